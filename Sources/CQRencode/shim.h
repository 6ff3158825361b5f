// libqrencode as CloudLogin uses it: the QR code of the device authorization URL (RFC 8628),
// drawn as text by Sources/CloudLogin/Support/QRCode.swift (docs/facts.md, "The QR code of the
// device authorization step").
//
// qrencode.h has no nullability annotations, so Swift would import its pointers as implicitly
// unwrapped optionals; this wrapper states what libqrencode does (NULL on failure) and fixes
// the parameters CloudLogin uses, so the Swift side needs no force unwrap.
#ifndef CLOUDLOGIN_CQRENCODE_SHIM_H
#define CLOUDLOGIN_CQRENCODE_SHIM_H

#include <stddef.h>
#include <qrencode.h>

/// The symbol of `size` bytes in byte (8-bit) mode, error correction level L, the smallest
/// version that holds them. NULL when libqrencode cannot encode them (errno: EINVAL for an
/// empty input, ERANGE when too long for version 40, ENOMEM). Free the result with
/// CQRencode_free. `data` may hold NUL bytes: the length is explicit.
static inline QRcode *_Nullable CQRencode_encode_bytes(const unsigned char *_Nonnull data, int size) {
    return QRcode_encodeData(size, data, 0, QR_ECLEVEL_L);
}

static inline void CQRencode_free(QRcode *_Nullable code) {
    if (code != NULL) QRcode_free(code);
}

#endif
