// Checks a password against the local shadow hash with libcrypt.
//
// In C because crypt_r's state (struct crypt_data, ~32 KiB) and getspnam_r's buffers hold
// the password and the hash: they are allocated, wiped and freed here in one place. No
// policy: the answer is 1 (matches), 0 (does not match), -1 (no shadow entry or no usable
// hash, e.g. a locked "!" or "*" entry), -2 (could not check).
#ifndef CLOUDLOGIN_CCRYPT_SHIM_H
#define CLOUDLOGIN_CCRYPT_SHIM_H

#include <crypt.h>
#include <errno.h>
#include <shadow.h>
#include <stdlib.h>
#include <string.h>

static inline int CCrypt_verify_shadow(const char *_Nonnull user, const char *_Nonnull password) {
    struct spwd entry, *found = NULL;
    size_t size = 16384;
    char *buffer = calloc(1, size);
    struct crypt_data *data = NULL;
    int result = -2;
    if (buffer == NULL) return -2;
    if (getspnam_r(user, &entry, buffer, size, &found) != 0 || found == NULL) { result = -1; goto out; }
    if (found->sp_pwdp == NULL || found->sp_pwdp[0] == '\0' || found->sp_pwdp[0] == '!' ||
        found->sp_pwdp[0] == '*') { result = -1; goto out; }
    data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) goto out;
    {
        const char *hashed = crypt_r(password, found->sp_pwdp, data);
        size_t length = strlen(found->sp_pwdp);
        unsigned char difference = 0;
        size_t i;
        if (hashed == NULL || hashed[0] == '*' || strlen(hashed) != length) { result = 0; goto out; }
        for (i = 0; i < length; i++) difference |= (unsigned char)(hashed[i] ^ found->sp_pwdp[i]);
        result = difference == 0 ? 1 : 0;
    }
out:
    if (data != NULL) { explicit_bzero(data, sizeof(struct crypt_data)); free(data); }
    explicit_bzero(buffer, size);
    free(buffer);
    return result;
}

#endif
