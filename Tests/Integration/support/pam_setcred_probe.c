/* A PAM module for tests: it stands for a module whose pam_setcred does real work after its own
 * sign-in (pam_krb5 storing tickets, pam_group granting groups). Its authentication always
 * succeeds; its setcred appends a line to the file named by its first argument, so a test sees
 * whether libpam reached it. Built by the tests with `cc -shared -fPIC`. */
#include <security/pam_modules.h>
#include <stdio.h>

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh; (void)flags; (void)argc; (void)argv;
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh; (void)flags;
    if (argc < 1) return PAM_SERVICE_ERR;
    FILE *file = fopen(argv[0], "a");
    if (file == NULL) return PAM_CRED_ERR;
    fputs("setcred\n", file);
    fclose(file);
    return PAM_SUCCESS;
}
