/*
 * pamdriver: run a real Linux-PAM stack from a private config directory.
 *
 * Build:  cc -O2 -Wall -Wextra -o pamdriver pamdriver.c -lpam
 *
 * Usage:  pamdriver --confdir DIR --service NAME [--user USER]
 *                   [--phase auth|acct|setcred|chauthtok|all] [--cycles N] [--silent] [--rss]
 *                   [--hold | --hold-unwiped] [--echo-on-stdin] [--tty TTY]
 *                   [--answer-delay-ms N]
 *
 * The password is the first line of stdin (newline stripped; an empty line is
 * the empty password), read once at startup and reused for every cycle. If
 * stdin is at EOF before any byte, there is no password and a
 * PAM_PROMPT_ECHO_OFF makes the conversation fail with PAM_CONV_ERR.
 * PAM_PROMPT_ECHO_ON is answered with $PAMDRIVER_ECHO_ON_ANSWER (unset: the
 * conversation fails). With --echo-on-stdin each PAM_PROMPT_ECHO_ON is answered
 * instead with the next line of stdin after the password, read only once the
 * prompt has been logged, so a test can answer it from a script after reading
 * it (EOF before any byte: the conversation fails, as Ctrl-D at a terminal).
 * --tty TTY sets PAM_TTY after pam_start (sshd sets it to "ssh").
 * PAM_ERROR_MSG / PAM_TEXT_INFO go to stderr as "MSG error: <text>" /
 * "MSG info: <text>"; prompts are logged to stderr as "PROMPT echo_off: <text>" /
 * "PROMPT echo_on: <text>".
 *
 * Each cycle is pam_start_confdir, the phase(s), pam_end. stdout gets, per
 * PAM call made:   RESULT <phase> <code> <PAM_NAME>
 * ("all" = auth, then acct, then setcred(PAM_ESTABLISH_CRED), stopping at the
 * first result other than PAM_SUCCESS, as a login program would;
 * "chauthtok" = pam_chauthtok alone, as passwd(1) calls it; if
 * pam_start_confdir itself fails the line is "RESULT start ..."). After the
 * last cycle:        USER <PAM_USER of the last cycle, or "(null)">
 * With --rss:        RSS_KB <VmRSS after cycle 1> <VmRSS after last cycle>
 *                    THREADS <Threads from /proc/self/status>
 * --user may be omitted: PAM then starts without a user and a module that
 * asks for one gets $PAMDRIVER_ECHO_ON_ANSWER.
 *
 * With --hold:      after the last cycle the driver wipes and frees its own copy of the
 *                   password, prints "HOLD <pid>" and waits until stdin reaches EOF, so a
 *                   test can read its memory (/proc/PID/mem): whatever copy of the password
 *                   is still there was left by libpam or a module (libpam wipes PAM_AUTHTOK
 *                   and the conversation's answers at pam_end). --hold-unwiped does the
 *                   same but keeps the driver's copy (a control: the search must find it).
 *
 * With --answer-delay-ms N: a PAM_PROMPT_ECHO_OFF is answered N ms after it was asked, as a
 *                   person typing would, and after each auth call stdout gets
 *                   "TIMING auth <ms from the answer to the PAM result>" (the part of a
 *                   sign-in a person waits for; `make bench`'s typing variant).
 *
 * Exit status: 0 if it ran (whatever PAM returned), 2 on a usage error,
 * 1 if stdin could not be read or memory ran out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

static char *g_password;      /* NULL: stdin was at EOF */
static long g_answer_delay_ms; /* --answer-delay-ms */
static struct timespec g_answered_at; /* when the last echo-off prompt was answered */
static int g_answered;
static size_t g_password_cap; /* bytes allocated for g_password */
static int g_echo_on_stdin;   /* --echo-on-stdin */
static char g_echo_on_line[4096];

static void wipe_password(void)
{
    if (g_password != NULL) {
        explicit_bzero(g_password, g_password_cap);
        free(g_password);
        g_password = NULL;
        g_password_cap = 0;
    }
}

/* Read stdin up to the first '\n' into a growable buffer; every superseded
 * buffer is wiped before it is freed. Returns 0, or -1 on a read/alloc error. */
static int read_password(void)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    int got_any = 0;
    for (;;) {
        if (cap - len < 2) {
            size_t ncap = cap * 2;
            char *nbuf = malloc(ncap);
            if (nbuf == NULL) {
                explicit_bzero(buf, cap);
                free(buf);
                return -1;
            }
            memcpy(nbuf, buf, len);
            explicit_bzero(buf, cap);
            free(buf);
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            explicit_bzero(buf, cap);
            free(buf);
            return -1;
        }
        if (n == 0)
            break;
        got_any = 1;
        char *nl = memchr(buf + len, '\n', (size_t)n);
        if (nl != NULL) {
            /* Bytes after the newline stay in the buffer until the final wipe. */
            len = (size_t)(nl - buf);
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (!got_any) {
        explicit_bzero(buf, cap);
        free(buf);
        return 0; /* no password at all */
    }
    g_password = buf;
    g_password_cap = cap;
    return 0;
}

/* One line of stdin, byte by byte (nothing read beyond the newline), into
 * g_echo_on_line without the newline. Returns NULL at EOF before any byte. */
static const char *read_echo_on_line(void)
{
    size_t len = 0;
    int got_any = 0;
    for (;;) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got_any = 1;
        if (c == '\n')
            break;
        if (len + 1 < sizeof g_echo_on_line)
            g_echo_on_line[len++] = c;
    }
    g_echo_on_line[len] = '\0';
    return got_any ? g_echo_on_line : NULL;
}

static const char *pam_code_name(int code)
{
    switch (code) {
    case PAM_SUCCESS: return "PAM_SUCCESS";
    case PAM_OPEN_ERR: return "PAM_OPEN_ERR";
    case PAM_SYMBOL_ERR: return "PAM_SYMBOL_ERR";
    case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
    case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
    case PAM_BUF_ERR: return "PAM_BUF_ERR";
    case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
    case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
    case PAM_CRED_INSUFFICIENT: return "PAM_CRED_INSUFFICIENT";
    case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
    case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
    case PAM_MAXTRIES: return "PAM_MAXTRIES";
    case PAM_NEW_AUTHTOK_REQD: return "PAM_NEW_AUTHTOK_REQD";
    case PAM_ACCT_EXPIRED: return "PAM_ACCT_EXPIRED";
    case PAM_SESSION_ERR: return "PAM_SESSION_ERR";
    case PAM_CRED_UNAVAIL: return "PAM_CRED_UNAVAIL";
    case PAM_CRED_EXPIRED: return "PAM_CRED_EXPIRED";
    case PAM_CRED_ERR: return "PAM_CRED_ERR";
    case PAM_NO_MODULE_DATA: return "PAM_NO_MODULE_DATA";
    case PAM_CONV_ERR: return "PAM_CONV_ERR";
    case PAM_AUTHTOK_ERR: return "PAM_AUTHTOK_ERR";
    case PAM_AUTHTOK_RECOVERY_ERR: return "PAM_AUTHTOK_RECOVERY_ERR";
    case PAM_AUTHTOK_LOCK_BUSY: return "PAM_AUTHTOK_LOCK_BUSY";
    case PAM_AUTHTOK_DISABLE_AGING: return "PAM_AUTHTOK_DISABLE_AGING";
    case PAM_TRY_AGAIN: return "PAM_TRY_AGAIN";
    case PAM_IGNORE: return "PAM_IGNORE";
    case PAM_ABORT: return "PAM_ABORT";
    case PAM_AUTHTOK_EXPIRED: return "PAM_AUTHTOK_EXPIRED";
    case PAM_MODULE_UNKNOWN: return "PAM_MODULE_UNKNOWN";
#ifdef PAM_BAD_ITEM
    case PAM_BAD_ITEM: return "PAM_BAD_ITEM";
#endif
#ifdef PAM_CONV_AGAIN
    case PAM_CONV_AGAIN: return "PAM_CONV_AGAIN";
#endif
#ifdef PAM_INCOMPLETE
    case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
#endif
    default: return "PAM_UNKNOWN_CODE";
    }
}

static void free_responses(struct pam_response *resp, int n)
{
    if (resp == NULL)
        return;
    for (int i = 0; i < n; i++) {
        if (resp[i].resp != NULL) {
            explicit_bzero(resp[i].resp, strlen(resp[i].resp));
            free(resp[i].resp);
        }
    }
    free(resp);
}

static int conversation(int num_msg, const struct pam_message **msg,
                        struct pam_response **resp_out, void *appdata)
{
    (void)appdata;
    if (resp_out == NULL || msg == NULL || num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    *resp_out = NULL;
    struct pam_response *resp = calloc((size_t)num_msg, sizeof *resp);
    if (resp == NULL)
        return PAM_BUF_ERR;

    for (int i = 0; i < num_msg; i++) {
        const struct pam_message *m = msg[i]; /* Linux-PAM layout */
        const char *text = (m->msg != NULL) ? m->msg : "";
        const char *answer = NULL;
        switch (m->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            fprintf(stderr, "PROMPT echo_off: %s\n", text);
            if (g_password == NULL)
                goto fail;
            if (g_answer_delay_ms > 0) {
                struct timespec wait = { g_answer_delay_ms / 1000, (g_answer_delay_ms % 1000) * 1000000L };
                while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {}
            }
            clock_gettime(CLOCK_MONOTONIC, &g_answered_at);
            g_answered = 1;
            answer = g_password;
            break;
        case PAM_PROMPT_ECHO_ON:
            fprintf(stderr, "PROMPT echo_on: %s\n", text);
            answer = g_echo_on_stdin ? read_echo_on_line() : getenv("PAMDRIVER_ECHO_ON_ANSWER");
            if (answer == NULL)
                goto fail;
            break;
        case PAM_ERROR_MSG:
            fprintf(stderr, "MSG error: %s\n", text);
            break;
        case PAM_TEXT_INFO:
            fprintf(stderr, "MSG info: %s\n", text);
            break;
        default:
            fprintf(stderr, "MSG unsupported style %d\n", m->msg_style);
            goto fail;
        }
        if (answer != NULL) {
            resp[i].resp = strdup(answer);
            if (resp[i].resp == NULL)
                goto fail;
        }
        resp[i].resp_retcode = 0;
    }
    *resp_out = resp;
    return PAM_SUCCESS;

fail:
    free_responses(resp, num_msg);
    return PAM_CONV_ERR;
}

static long proc_status_value(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    long value = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            value = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static void usage(FILE *to)
{
    fputs("usage: pamdriver --confdir DIR --service NAME [--user USER]\n"
          "                 [--phase auth|acct|setcred|chauthtok|all] [--cycles N] [--silent] [--rss] [--hold]\n"
          "                 [--echo-on-stdin] [--tty TTY]\n"
          "password: first line of stdin\n",
          to);
}

static void result(const char *phase, int code)
{
    printf("RESULT %s %d %s\n", phase, code, pam_code_name(code));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *confdir = NULL, *service = NULL, *user = NULL, *phase = "auth", *tty = NULL;
    long cycles = 1;
    int silent = 0, rss = 0, hold = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = (i + 1 < argc);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--silent") == 0) {
            silent = 1;
        } else if (strcmp(a, "--rss") == 0) {
            rss = 1;
        } else if (strcmp(a, "--echo-on-stdin") == 0) {
            g_echo_on_stdin = 1;
        } else if (strcmp(a, "--hold") == 0) {
            hold = 1;
        } else if (strcmp(a, "--hold-unwiped") == 0) {
            hold = 2; /* the same, keeping the driver's own copy: a positive control */
        } else if (strcmp(a, "--answer-delay-ms") == 0 && has_value) {
            g_answer_delay_ms = strtol(argv[++i], NULL, 10);
            if (g_answer_delay_ms < 0 || g_answer_delay_ms > 600000) {
                fprintf(stderr, "pamdriver: --answer-delay-ms needs 0..600000\n");
                return 2;
            }
        } else if (strcmp(a, "--tty") == 0 && has_value) {
            tty = argv[++i];
        } else if (strcmp(a, "--confdir") == 0 && has_value) {
            confdir = argv[++i];
        } else if (strcmp(a, "--service") == 0 && has_value) {
            service = argv[++i];
        } else if (strcmp(a, "--user") == 0 && has_value) {
            user = argv[++i];
        } else if (strcmp(a, "--phase") == 0 && has_value) {
            phase = argv[++i];
        } else if (strcmp(a, "--cycles") == 0 && has_value) {
            const char *s = argv[++i];
            char *end = NULL;
            errno = 0;
            cycles = strtol(s, &end, 10);
            if (errno != 0 || end == s || *end != '\0' || cycles < 1) {
                fprintf(stderr, "pamdriver: --cycles needs a positive integer, got '%s'\n", s);
                return 2;
            }
        } else {
            fprintf(stderr, "pamdriver: bad argument '%s'%s\n", a,
                    has_value ? "" : " (missing value?)");
            usage(stderr);
            return 2;
        }
    }
    if (confdir == NULL || service == NULL) {
        fputs("pamdriver: --confdir and --service are required\n", stderr);
        usage(stderr);
        return 2;
    }
    int do_auth = 0, do_acct = 0, do_setcred = 0, do_chauthtok = 0;
    if (strcmp(phase, "auth") == 0) do_auth = 1;
    else if (strcmp(phase, "acct") == 0) do_acct = 1;
    else if (strcmp(phase, "setcred") == 0) do_setcred = 1;
    else if (strcmp(phase, "chauthtok") == 0) do_chauthtok = 1;
    else if (strcmp(phase, "all") == 0) do_auth = do_acct = do_setcred = 1;
    else {
        fprintf(stderr, "pamdriver: unknown --phase '%s'\n", phase);
        usage(stderr);
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (read_password() != 0) {
        fprintf(stderr, "pamdriver: reading stdin: %s\n", strerror(errno));
        return 1;
    }

    const int flags = silent ? PAM_SILENT : 0;
    const struct pam_conv conv = { conversation, NULL };
    char *last_user = NULL;
    long rss_first = -1;

    for (long c = 1; c <= cycles; c++) {
        pam_handle_t *pamh = NULL;
        int rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
        if (rc == PAM_SUCCESS && tty != NULL)
            rc = pam_set_item(pamh, PAM_TTY, tty);
        if (rc != PAM_SUCCESS) {
            result("start", rc);
            if (pamh != NULL)
                pam_end(pamh, rc);
        } else {
            int ok = 1;
            if (do_auth && ok) {
                g_answered = 0;
                rc = pam_authenticate(pamh, flags);
                if (g_answer_delay_ms > 0 && g_answered) {
                    struct timespec now;
                    clock_gettime(CLOCK_MONOTONIC, &now);
                    printf("TIMING auth %.3f\n", (double)(now.tv_sec - g_answered_at.tv_sec) * 1e3 +
                                                   (double)(now.tv_nsec - g_answered_at.tv_nsec) / 1e6);
                }
                result("auth", rc);
                ok = (rc == PAM_SUCCESS);
            }
            if (do_acct && ok) {
                rc = pam_acct_mgmt(pamh, flags);
                result("acct", rc);
                ok = (rc == PAM_SUCCESS);
            }
            if (do_setcred && ok) {
                rc = pam_setcred(pamh, flags | PAM_ESTABLISH_CRED);
                result("setcred", rc);
            }
            if (do_chauthtok) {
                rc = pam_chauthtok(pamh, flags);
                result("chauthtok", rc);
            }
            if (c == cycles) {
                const void *item = NULL;
                if (pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item != NULL)
                    last_user = strdup((const char *)item);
            }
            pam_end(pamh, rc);
        }
        if (c == 1)
            rss_first = proc_status_value("VmRSS");
    }

    printf("USER %s\n", last_user != NULL ? last_user : "(null)");
    free(last_user);
    if (rss) {
        printf("RSS_KB %ld %ld\n", rss_first, proc_status_value("VmRSS"));
        printf("THREADS %ld\n", proc_status_value("Threads"));
    }
    fflush(stdout);
    if (hold != 2)
        wipe_password();
    if (hold) {
        char c;
        ssize_t n;
        printf("HOLD %ld\n", (long)getpid());
        fflush(stdout);
        while ((n = read(STDIN_FILENO, &c, 1)) > 0 || (n < 0 && errno == EINTR))
            ;
    }
    wipe_password();
    return 0;
}
