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

/// Copies the shadow hash of `user` into a new buffer (*hash_out, to be freed with
/// CCrypt_free_hash). 1: copied; -1: no shadow entry or no usable hash (a locked "!" or "*"
/// entry); -2: could not read.
static inline int CCrypt_shadow_hash(const char *_Nonnull user, char *_Nullable *_Nonnull hash_out) {
    struct spwd entry, *found = NULL;
    size_t size = 16384;
    char *buffer = calloc(1, size);
    int result = -2;
    *hash_out = NULL;
    if (buffer == NULL) return -2;
    if (getspnam_r(user, &entry, buffer, size, &found) != 0 || found == NULL) { result = -1; goto out; }
    if (found->sp_pwdp == NULL || found->sp_pwdp[0] == '\0' || found->sp_pwdp[0] == '!' ||
        found->sp_pwdp[0] == '*') { result = -1; goto out; }
    *hash_out = strdup(found->sp_pwdp);
    result = *hash_out == NULL ? -2 : 1;
out:
    explicit_bzero(buffer, size);
    free(buffer);
    return result;
}

static inline void CCrypt_free_hash(char *_Nullable hash) {
    if (hash == NULL) return;
    explicit_bzero(hash, strlen(hash));
    free(hash);
}

/// Whether `password` hashes to `hash` with `data` (crypt_r's state, zeroed): 1 matches,
/// 0 does not. Pure computation (crypt_r, e.g. yescrypt): no file is read, nothing allocated here.
static inline int CCrypt_check_hash_with(const char *_Nonnull password, const char *_Nonnull hash,
                                         struct crypt_data *_Nonnull data) {
    int result = 0;
    {
        const char *hashed = crypt_r(password, hash, data);
        size_t length = strlen(hash);
        unsigned char difference = 0;
        size_t i;
        if (hashed == NULL || hashed[0] == '*' || strlen(hashed) != length) goto out;
        for (i = 0; i < length; i++) difference |= (unsigned char)(hashed[i] ^ hash[i]);
        result = difference == 0 ? 1 : 0;
    }
out:
    explicit_bzero(data, sizeof(struct crypt_data));
    return result;
}

/// Whether `password` hashes to `hash`: 1 matches, 0 does not, -2 could not check.
static inline int CCrypt_check_hash(const char *_Nonnull password, const char *_Nonnull hash) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    int result;
    if (data == NULL) return -2;
    result = CCrypt_check_hash_with(password, hash, data);
    free(data);
    return result;
}

static inline int CCrypt_verify_shadow(const char *_Nonnull user, const char *_Nonnull password) {
    char *hash = NULL;
    int result = CCrypt_shadow_hash(user, &hash);
    if (result == 1) result = CCrypt_check_hash(password, hash);
    CCrypt_free_hash(hash);
    return result;
}

/// A check of a password against a hash on another thread (ShadowUtilsAccounts'
/// startPasswordCheck): CCrypt_check_new copies both (wiped by CCrypt_check_free), the thread
/// runs CCrypt_check_thread, and after pthread_join the starting thread reads the answer.
/// Nothing is shared while the thread runs: it reads only its own copies and writes `answer`.
typedef struct CCrypt_check {
    char *_Nonnull password;
    char *_Nonnull hash;
    /* crypt_r's state, allocated here by the starting thread: the check thread allocates
       nothing (a first malloc on a new thread would give it a malloc arena of its own, which
       stays in the host's memory after the thread ends). */
    struct crypt_data *_Nonnull data;
    int answer; /* as CCrypt_check_hash; -3 until the thread has run */
} CCrypt_check;

static inline CCrypt_check *_Nullable CCrypt_check_new(const char *_Nonnull password, const char *_Nonnull hash) {
    CCrypt_check *check = calloc(1, sizeof *check);
    if (check == NULL) return NULL;
    check->password = strdup(password);
    check->hash = strdup(hash);
    check->data = calloc(1, sizeof(struct crypt_data));
    check->answer = -3;
    if (check->password == NULL || check->hash == NULL || check->data == NULL) {
        CCrypt_free_hash(check->password);
        CCrypt_free_hash(check->hash);
        free(check->data);
        free(check);
        return NULL;
    }
    return check;
}

static void *_Nullable CCrypt_check_thread(void *_Nullable context) {
    CCrypt_check *check = context;
    if (check != NULL) check->answer = CCrypt_check_hash_with(check->password, check->hash, check->data);
    return NULL;
}

static inline int CCrypt_check_answer(const CCrypt_check *_Nonnull check) { return check->answer; }

/// 1 if the check was made for this password against this hash.
static inline int CCrypt_check_is_for(const CCrypt_check *_Nonnull check, const char *_Nonnull password,
                                      const char *_Nonnull hash) {
    return strcmp(check->password, password) == 0 && strcmp(check->hash, hash) == 0;
}

static inline void CCrypt_check_free(CCrypt_check *_Nullable check) {
    if (check == NULL) return;
    CCrypt_free_hash(check->password);
    CCrypt_free_hash(check->hash);
    explicit_bzero(check->data, sizeof(struct crypt_data));
    free(check->data);
    explicit_bzero(check, sizeof *check);
    free(check);
}

#endif
