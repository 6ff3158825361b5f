// The OpenSSL calls CloudLogin needs to verify a JWS signature and hash a cache key.
//
// These are not policy: each function takes key material and bytes and answers 1 (valid),
// 0 (invalid) or -1 (could not check). They exist because OpenSSL 3's key construction
// (OSSL_PARAM_BLD), ECDSA_SIG and the EVP_PKEY_CTX padding macros are awkward to call from
// Swift without force unwraps; keeping them in C keeps the Swift side free of traps.
#ifndef CLOUDLOGIN_COPENSSL_SHIM_H
#define CLOUDLOGIN_COPENSSL_SHIM_H

#include <stddef.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

/// Digest names accepted by COpenSSL_verify: "SHA256", "SHA384", "SHA512".
/// padding: 0 = PKCS#1 v1.5 (RS*), 1 = PSS with salt length = digest length (PS*), 2 = ECDSA
/// with a raw R||S signature as JWS uses (ES*).
static inline EVP_PKEY *_Nullable COpenSSL_rsa_key(const unsigned char *_Nonnull n, size_t nlen,
                                                  const unsigned char *_Nonnull e, size_t elen) {
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL);
    BIGNUM *bn_e = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bn_n == NULL || bn_e == NULL || bld == NULL) goto out;
    if (nlen > 2048 || elen > 16) goto out; /* at most 16384-bit moduli */
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)) goto out;
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL) goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0) goto out;
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) pkey = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

/// curve: "P-256" or "P-384" (JWK crv names). x and y are the big-endian coordinates.
static inline EVP_PKEY *_Nullable COpenSSL_ec_key(const char *_Nonnull crv,
                                                 const unsigned char *_Nonnull x, size_t xlen,
                                                 const unsigned char *_Nonnull y, size_t ylen) {
    const char *group = NULL;
    size_t field = 0;
    unsigned char point[1 + 2 * 66];
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM params[3];
    if (strcmp(crv, "P-256") == 0) { group = "prime256v1"; field = 32; }
    else if (strcmp(crv, "P-384") == 0) { group = "secp384r1"; field = 48; }
    else return NULL;
    if (xlen != field || ylen != field) return NULL;
    point[0] = 0x04;
    memcpy(point + 1, x, field);
    memcpy(point + 1 + field, y, field);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * field);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static inline void COpenSSL_key_free(EVP_PKEY *_Nullable pkey) { EVP_PKEY_free(pkey); }

/// Bits of an RSA key or of an EC key's group, 0 when unknown.
static inline int COpenSSL_key_bits(EVP_PKEY *_Nonnull pkey) { return EVP_PKEY_get_bits(pkey); }

static inline int COpenSSL_verify(EVP_PKEY *_Nonnull pkey, const char *_Nonnull digest,
                                  int padding,
                                  const unsigned char *_Nonnull data, size_t datalen,
                                  const unsigned char *_Nonnull sig, size_t siglen) {
    int result = -1;
    EVP_MD_CTX *mdctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = EVP_get_digestbyname(digest);
    unsigned char *der = NULL;
    ECDSA_SIG *ecsig = NULL;
    const unsigned char *check_sig = sig;
    size_t check_len = siglen;
    if (mdctx == NULL || md == NULL) goto out;
    if (padding == 2) {
        /* JWS carries R||S, each half the signature; OpenSSL wants DER. */
        int half = (EVP_PKEY_get_bits(pkey) + 7) / 8;
        BIGNUM *r = NULL, *s = NULL;
        int derlen;
        if (half <= 0 || siglen != (size_t)(2 * half)) { result = 0; goto out; }
        r = BN_bin2bn(sig, half, NULL);
        s = BN_bin2bn(sig + half, half, NULL);
        ecsig = ECDSA_SIG_new();
        if (r == NULL || s == NULL || ecsig == NULL || !ECDSA_SIG_set0(ecsig, r, s)) {
            BN_free(r);
            BN_free(s);
            goto out;
        }
        derlen = i2d_ECDSA_SIG(ecsig, &der);
        if (derlen <= 0) goto out;
        check_sig = der;
        check_len = (size_t)derlen;
    }
    if (EVP_DigestVerifyInit(mdctx, &pctx, md, NULL, pkey) <= 0) goto out;
    if (padding == 1) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0) goto out;
        if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0) goto out;
    } else if (padding == 0) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) goto out;
    }
    result = EVP_DigestVerify(mdctx, check_sig, check_len, data, datalen) == 1 ? 1 : 0;
out:
    ERR_clear_error(); /* leave no errors queued in the host process */
    OPENSSL_free(der);
    ECDSA_SIG_free(ecsig);
    EVP_MD_CTX_free(mdctx);
    return result;
}

/// `length` bytes from OpenSSL's CSPRNG into out. Returns 1 on success.
static inline int COpenSSL_random(unsigned char *_Nonnull out, int length) {
    return RAND_bytes(out, length) == 1;
}

/// SHA-256 of data into out (32 bytes). Returns 1 on success.
static inline int COpenSSL_sha256(const void *_Nonnull data, size_t len,
                                  unsigned char *_Nonnull out) {
    unsigned int outlen = 0;
    return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) == 1 && outlen == 32;
}

#endif
