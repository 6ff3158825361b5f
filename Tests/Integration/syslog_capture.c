/* Test helper, LD_PRELOADed into the PAM driver: appends every syslog line to the file named
 * by $SYSLOG_CAPTURE, so integration tests can read what pam_cloudlogin.so logged without a
 * syslog daemon. Debian builds libpam with _FORTIFY_SOURCE, so the __*_chk variants are the
 * ones called; all four are covered. The file's name is also read once when the library is
 * loaded, so capturing goes on in a host that clears its environment before PAM runs (shadow's
 * /bin/login keeps only TERM): preloaded into login, it captures what the modules log there. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static char loaded_path[4096];

__attribute__((constructor)) static void remember_path(void) {
    const char *path = getenv("SYSLOG_CAPTURE");
    if (path != NULL && strlen(path) < sizeof loaded_path) strcpy(loaded_path, path);
}

static void capture(int priority, const char *format, va_list args) {
    const char *path = getenv("SYSLOG_CAPTURE");
    if (path == NULL && loaded_path[0] != '\0') path = loaded_path;
    FILE *file;
    if (path == NULL || (file = fopen(path, "a")) == NULL) return;
    fprintf(file, "<%d> ", priority & LOG_PRIMASK);
    vfprintf(file, format, args);
    fputc('\n', file);
    fclose(file);
}

void vsyslog(int priority, const char *format, va_list args) { capture(priority, format, args); }
void __vsyslog_chk(int priority, int flag, const char *format, va_list args) {
    (void)flag;
    capture(priority, format, args);
}
void syslog(int priority, const char *format, ...) {
    va_list args;
    va_start(args, format);
    capture(priority, format, args);
    va_end(args);
}
void __syslog_chk(int priority, int flag, const char *format, ...) {
    va_list args;
    (void)flag;
    va_start(args, format);
    capture(priority, format, args);
    va_end(args);
}
