/*
 * fake_pam_module: a PAM module that returns whatever code its arguments say, for checking
 * what real libpam does with a control (Tests/Integration/test_pam_controls.py).
 *
 * Build:  cc -shared -fPIC -o fake_pam_module.so fake_pam_module.c
 * Use:    auth CONTROL /path/fake_pam_module.so auth=7 acct=6 password=20
 *
 * Each phase returns the number given for it (auth=, acct=, password=; setcred always
 * PAM_SUCCESS); a phase without a number returns PAM_SUCCESS.
 */
#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_PASSWORD
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>

static int code_for(const char *phase, int argc, const char **argv)
{
    size_t n = strlen(phase);
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], phase, n) == 0 && argv[i][n] == '=')
            return atoi(argv[i] + n + 1);
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh; (void)flags;
    return code_for("auth", argc, argv);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh; (void)flags; (void)argc; (void)argv;
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh; (void)flags;
    return code_for("acct", argc, argv);
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
    (void)pamh; (void)flags;
    return code_for("password", argc, argv);
}
