// pam_cloudlogin.so entry points. Each is one line: policy lives in Swift (CloudLoginPAM),
// which maps every outcome to a PAM code in one place.
#include "CShim.h"

#include <stdlib.h>
#include <string.h>

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return cl_dispatch(pamh, CLOUDLOGIN_PHASE_AUTHENTICATE, flags, argc, argv);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return cl_dispatch(pamh, CLOUDLOGIN_PHASE_SETCRED, flags, argc, argv);
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return cl_dispatch(pamh, CLOUDLOGIN_PHASE_ACCT_MGMT, flags, argc, argv);
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    return cl_dispatch(pamh, CLOUDLOGIN_PHASE_CHAUTHTOK, flags, argc, argv);
}

void CShim_syslog(const pam_handle_t *pamh, int priority, const char *message) {
    pam_syslog(pamh, priority, "%s", message);
}

int CShim_message(pam_handle_t *pamh, int style, const char *message) {
    return pam_prompt(pamh, style, NULL, "%s", message);
}

int CShim_prompt(pam_handle_t *pamh, int style, char **response, const char *prompt) {
    *response = NULL;
    return pam_prompt(pamh, style, response, "%s", prompt);
}

int CShim_get_user(pam_handle_t *pamh, const char **user) {
    *user = NULL;
    return pam_get_user(pamh, user, NULL);
}

int CShim_get_string_item(pam_handle_t *pamh, int type, const char **value) {
    const void *item = NULL;
    int status;
    *value = NULL;
    if (type != PAM_SERVICE && type != PAM_TTY && type != PAM_RHOST && type != PAM_RUSER) return PAM_BAD_ITEM;
    status = pam_get_item(pamh, type, &item);
    if (status == PAM_SUCCESS) *value = item;
    return status;
}

int CShim_get_password(pam_handle_t *pamh, const char **password) {
    *password = NULL;
    return pam_get_authtok(pamh, PAM_AUTHTOK, password, NULL);
}

int CShim_set_user(pam_handle_t *pamh, const char *user) {
    return pam_set_item(pamh, PAM_USER, user);
}

// The data's value is the address of this constant: nothing to free, nothing to forge from
// another module (which would need this address).
static const char cloudlogin_authenticated_key[] = "pam_cloudlogin/authenticated";
static const char cloudlogin_authenticated_yes = 1;

int CShim_set_authenticated(pam_handle_t *pamh, int authenticated) {
    return pam_set_data(pamh, cloudlogin_authenticated_key,
                        authenticated ? (void *)&cloudlogin_authenticated_yes : NULL, NULL);
}

int CShim_was_authenticated(pam_handle_t *pamh) {
    const void *data = NULL;
    if (pam_get_data(pamh, cloudlogin_authenticated_key, &data) != PAM_SUCCESS) return 0;
    return data == &cloudlogin_authenticated_yes;
}

void CShim_free_secret(char *secret) {
    if (secret == NULL) return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}
