/* A PAM module for the device-grant test harness (accounts/test_device_harness.py): it shows
 * the text of the file named by its first argument the way the contract says pam_cloudlogin
 * shows the device step, so the harness (the console, pamdriver --echo-on-stdin, the ssh
 * client) is proved without CloudLogin.
 *   pam_device_probe.so FILE info    the text as one PAM_TEXT_INFO message, then PAM_SUCCESS
 *   pam_device_probe.so FILE prompt  the text as one echo-on prompt: an answer (even empty)
 *                                    gives PAM_SUCCESS, a failed conversation PAM_AUTH_ERR
 * Built by the tests with `cc -shared -fPIC ... -lpam`. */
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    if (argc < 2) return PAM_SERVICE_ERR;
    const char *user = NULL;
    if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL) /* login asks for it here */
        return PAM_AUTH_ERR;
    char text[16384];
    FILE *file = fopen(argv[0], "r");
    if (file == NULL) return PAM_SERVICE_ERR;
    size_t n = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[n] = '\0';
    if (strcmp(argv[1], "info") == 0)
        return pam_info(pamh, "%s", text) == PAM_SUCCESS ? PAM_SUCCESS : PAM_AUTH_ERR;
    char *answer = NULL;
    if (pam_prompt(pamh, PAM_PROMPT_ECHO_ON, &answer, "%s", text) != PAM_SUCCESS || answer == NULL)
        return PAM_AUTH_ERR;
    free(answer);
    return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh; (void)flags; (void)argc; (void)argv;
    return PAM_SUCCESS;
}
