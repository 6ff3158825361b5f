/*
 * loadcost: what loading a PAM module costs a host process, for `make bench`.
 *
 *   loadcost CONFDIR SERVICE acct|auth USER        (password for auth: first line of stdin)
 *
 * libpam loads a service's modules in pam_start. So: one pam_start/pam_end of CONFDIR's
 * "other" service (pam_permit: libpam and its own files warm), then VmRSS, then pam_start of
 * "other" again and of SERVICE (a file with one line: the module under test); the difference
 * of the two is the module's dlopen (+ its line parsed). Then one pam_acct_mgmt or
 * pam_authenticate: the first call. Prints
 *   LOADCOST <dlopen ms> <first call ms> <RSS added kB> <PAM code>
 * (libpam must call the module: a module that keeps data with pam_set_data cannot be called
 * directly.)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <security/pam_appl.h>

static char password[512];

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long value = -1;
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) value = strtol(line + 6, NULL, 10);
    fclose(f);
    return value;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
    (void)data;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (r == NULL) return PAM_BUF_ERR;
    for (int i = 0; i < n; i++)
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) r[i].resp = strdup(password);
    *resp = r;
    return PAM_SUCCESS;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fputs("usage: loadcost CONFDIR SERVICE acct|auth USER\n", stderr);
        return 2;
    }
    if (fgets(password, sizeof password, stdin) != NULL) password[strcspn(password, "\n")] = 0;
    struct pam_conv c = { conv, NULL };
    pam_handle_t *warm = NULL, *pamh = NULL;
    if (pam_start_confdir("other", argv[4], &c, argv[1], &warm) != PAM_SUCCESS) return 1;
    pam_end(warm, PAM_SUCCESS);
    long before = rss_kb();
    double t0 = now_ms();
    if (pam_start_confdir("other", argv[4], &c, argv[1], &warm) != PAM_SUCCESS) return 1;
    double t1 = now_ms();
    if (pam_start_confdir(argv[2], argv[4], &c, argv[1], &pamh) != PAM_SUCCESS) return 1;
    double t2 = now_ms();
    int code = strcmp(argv[3], "auth") == 0 ? pam_authenticate(pamh, PAM_SILENT) : pam_acct_mgmt(pamh, PAM_SILENT);
    double t3 = now_ms();
    long after = rss_kb();
    printf("LOADCOST %.3f %.3f %ld %d\n", (t2 - t1) - (t1 - t0), t3 - t2, after - before, code);
    pam_end(pamh, code);
    pam_end(warm, PAM_SUCCESS);
    return 0;
}
