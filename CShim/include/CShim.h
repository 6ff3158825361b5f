// The C side of pam_cloudlogin.so.
//
// The pam_sm_* entry points live in CShim.c and hand over to one Swift function per phase
// (cl_* below, provided with @_cdecl by CloudLoginPAM). The wrappers exist because PAM's
// logging and prompting calls are variadic, which Swift cannot call; each passes a fixed
// "%s" so no text we pass is ever read as a format.
#ifndef CLOUDLOGIN_CSHIM_H
#define CLOUDLOGIN_CSHIM_H

#include <stddef.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <syslog.h>

/// The PAM phases CloudLogin takes part in; passed to cl_dispatch.
typedef enum {
    CLOUDLOGIN_PHASE_AUTHENTICATE = 1,
    CLOUDLOGIN_PHASE_SETCRED = 2,
    CLOUDLOGIN_PHASE_ACCT_MGMT = 3,
    CLOUDLOGIN_PHASE_CHAUTHTOK = 4,
} CloudLoginPhase;

/// Implemented in Swift (CloudLoginPAM). Never traps; returns a PAM code.
extern int cl_dispatch(pam_handle_t *_Nonnull pamh, int phase, int flags, int argc,
                       const char *_Nullable *_Nullable argv);

/// pam_syslog(pamh, priority, "%s", message).
void CShim_syslog(const pam_handle_t *_Nonnull pamh, int priority, const char *_Nonnull message);

/// Shows a message through the application's conversation: style is PAM_TEXT_INFO or
/// PAM_ERROR_MSG. Returns a PAM code.
int CShim_message(pam_handle_t *_Nonnull pamh, int style, const char *_Nonnull message);

/// Asks through the conversation (PAM_PROMPT_ECHO_OFF or PAM_PROMPT_ECHO_ON); the answer is
/// returned in *response (malloc'd, to be freed with CShim_free_secret).
int CShim_prompt(pam_handle_t *_Nonnull pamh, int style, char *_Nullable *_Nonnull response,
                 const char *_Nonnull prompt);

/// Reads the module's PAM_USER (pam_get_user with PAM's default prompt).
int CShim_get_user(pam_handle_t *_Nonnull pamh, const char *_Nullable *_Nonnull user);

/// A string item of the handle (PAM_SERVICE, PAM_TTY, …) through pam_get_item. The string
/// belongs to PAM: copy it, do not free it.
int CShim_get_string_item(pam_handle_t *_Nonnull pamh, int type, const char *_Nullable *_Nonnull value);

/// pam_get_authtok for PAM_AUTHTOK; honours try_first_pass/use_first_pass in the module
/// arguments. The token belongs to PAM: copy it, do not free it.
int CShim_get_password(pam_handle_t *_Nonnull pamh, const char *_Nullable *_Nonnull password);

/// Sets PAM_USER.
int CShim_set_user(pam_handle_t *_Nonnull pamh, const char *_Nonnull user);

/// Remembers in the PAM handle whether this module authenticated the user (pam_set_data), so
/// that pam_sm_setcred can tell its own sign-ins from those of other modules.
int CShim_set_authenticated(pam_handle_t *_Nonnull pamh, int authenticated);

/// Whether CShim_set_authenticated(pamh, 1) was the last word in this handle.
int CShim_was_authenticated(pam_handle_t *_Nonnull pamh);

/// Overwrites and frees a secret returned by CShim_prompt.
void CShim_free_secret(char *_Nullable secret);

#endif
