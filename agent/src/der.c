/*
 * der.c - DER writing and reading for the agent's few fixed structures (X.690).
 */
#include "der.h"

#include <string.h>

static const uint8_t SPKI_PREFIX[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, /* ecPublicKey */
    0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, /* prime256v1 */
    0x03, 0x42, 0x00};
static const uint8_t SPKI_P384_PREFIX[23] = {
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, /* ecPublicKey */
    0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22, /* secp384r1 */
    0x03, 0x62, 0x00};
static const uint8_t OID_EC_PUBLIC_KEY[7] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
static const uint8_t OID_PRIME256V1[8] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t OID_COMMON_NAME[3] = {0x55, 0x04, 0x03};
static const uint8_t ALG_ECDSA_SHA256[12] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86,
                                             0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02};
static const uint8_t ALG_ECDSA_SHA384[12] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86,
                                             0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03};

size_t der_point_size(enum der_curve curve)
{
    return curve == DER_P384 ? AGENT_P384_PUBLIC_SIZE : AGENT_P256_PUBLIC_SIZE;
}

size_t der_spki_size(enum der_curve curve)
{
    return curve == DER_P384 ? AGENT_SPKI_P384_SIZE : AGENT_SPKI_SIZE;
}

size_t der_rs_size(enum der_curve curve)
{
    return curve == DER_P384 ? AGENT_P384_SIGNATURE_SIZE : AGENT_P256_SIGNATURE_SIZE;
}

void der_spki(enum der_curve curve, const uint8_t *pub, uint8_t *out)
{
    if (curve == DER_P384) {
        memcpy(out, SPKI_P384_PREFIX, sizeof SPKI_P384_PREFIX);
        memcpy(out + sizeof SPKI_P384_PREFIX, pub, AGENT_P384_PUBLIC_SIZE);
        return;
    }
    memcpy(out, SPKI_PREFIX, sizeof SPKI_PREFIX);
    memcpy(out + sizeof SPKI_PREFIX, pub, AGENT_P256_PUBLIC_SIZE);
}

static size_t len_size(size_t len)
{
    return len < 0x80u ? 1u : len <= 0xFFu ? 2u : 3u;
}

/* Write tag and length at out; returns the header size. Lengths here stay below 64 KiB. */
static size_t put_header(uint8_t *out, uint8_t tag, size_t len)
{
    out[0] = tag;
    if (len < 0x80u) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFu) {
        out[1] = 0x81;
        out[2] = (uint8_t)len;
        return 3;
    }
    out[1] = 0x82;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
}

static size_t tlv_size(size_t len)
{
    return 1u + len_size(len) + len;
}

static size_t put_integer(uint8_t *out, const uint8_t *value, size_t len)
{
    size_t skip = 0;
    size_t pad;
    size_t n;
    while (skip < len - 1u && value[skip] == 0) {
        skip++;
    }
    pad = (value[skip] & 0x80u) ? 1u : 0u;
    n = put_header(out, 0x02, len - skip + pad);
    if (pad) {
        out[n++] = 0;
    }
    memcpy(out + n, value + skip, len - skip);
    return n + len - skip;
}

size_t der_signature(enum der_curve curve, const uint8_t *rs, uint8_t out[AGENT_SIG_DER_MAX])
{
    uint8_t body[AGENT_SIG_DER_MAX];
    size_t half = der_rs_size(curve) / 2u;
    size_t n = put_integer(body, rs, half);
    size_t h;
    n += put_integer(body + n, rs + half, half);
    h = put_header(out, 0x30, n);
    memcpy(out + h, body, n);
    return h + n;
}

size_t der_csr_info(enum der_curve curve, const uint8_t *cn, size_t cn_len, const uint8_t *pub,
                    uint8_t *out, size_t cap)
{
    /* CertificationRequestInfo ::= SEQUENCE { version INTEGER 0, subject Name,
     *   subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute (empty) } */
    size_t atv = tlv_size(sizeof OID_COMMON_NAME) + tlv_size(cn_len);
    size_t rdn = tlv_size(atv);
    size_t name = tlv_size(rdn);
    size_t spki = der_spki_size(curve);
    size_t body = 3u + tlv_size(name) + spki + 2u;
    size_t total = tlv_size(body);
    size_t n;
    if (total > cap) {
        return 0;
    }
    n = put_header(out, 0x30, body);
    out[n++] = 0x02; /* version 0 */
    out[n++] = 0x01;
    out[n++] = 0x00;
    n += put_header(out + n, 0x30, name);
    n += put_header(out + n, 0x31, rdn);
    n += put_header(out + n, 0x30, atv);
    n += put_header(out + n, 0x06, sizeof OID_COMMON_NAME);
    memcpy(out + n, OID_COMMON_NAME, sizeof OID_COMMON_NAME);
    n += sizeof OID_COMMON_NAME;
    n += put_header(out + n, 0x0C, cn_len); /* UTF8String */
    memcpy(out + n, cn, cn_len);
    n += cn_len;
    der_spki(curve, pub, out + n);
    n += spki;
    out[n++] = 0xA0; /* attributes: none */
    out[n++] = 0x00;
    return n;
}

size_t der_csr_finish(enum der_curve curve, uint8_t *out, size_t cap, size_t info_len,
                      const uint8_t *sig, size_t sig_len)
{
    const uint8_t *alg = curve == DER_P384 ? ALG_ECDSA_SHA384 : ALG_ECDSA_SHA256;
    size_t body = info_len + sizeof ALG_ECDSA_SHA256 + tlv_size(sig_len + 1u);
    size_t head = 1u + len_size(body);
    size_t n;
    if (head + body > cap) {
        return 0;
    }
    memmove(out + head, out, info_len);
    put_header(out, 0x30, body);
    n = head + info_len;
    memcpy(out + n, alg, sizeof ALG_ECDSA_SHA256); /* both identifiers are 12 bytes */
    n += sizeof ALG_ECDSA_SHA256;
    n += put_header(out + n, 0x03, sig_len + 1u);
    out[n++] = 0x00; /* no unused bits */
    memcpy(out + n, sig, sig_len);
    return n + sig_len;
}

/* A minimal DER reader: one TLV at a time, definite lengths, no trailing slack. */
typedef struct der_reader {
    const uint8_t *p;
    const uint8_t *end;
} der_reader_t;

static int der_next(der_reader_t *r, uint8_t tag, der_reader_t *content)
{
    size_t len;
    if (r->end - r->p < 2 || r->p[0] != tag) {
        return -1;
    }
    len = r->p[1];
    r->p += 2;
    if (len & 0x80u) {
        size_t count = len & 0x7Fu;
        size_t i;
        if (count == 0 || count > 2 || (size_t)(r->end - r->p) < count) {
            return -1;
        }
        len = 0;
        for (i = 0; i < count; i++) {
            len = (len << 8) | *r->p++;
        }
        if (len < 0x80u) {
            return -1; /* not the shortest form: not DER */
        }
    }
    if ((size_t)(r->end - r->p) < len) {
        return -1;
    }
    content->p = r->p;
    content->end = r->p + len;
    r->p += len;
    return 0;
}

static int der_expect(der_reader_t *r, uint8_t tag, const uint8_t *value, size_t len)
{
    der_reader_t c;
    if (der_next(r, tag, &c) != 0 || (size_t)(c.end - c.p) != len) {
        return -1;
    }
    return memcmp(c.p, value, len) == 0 ? 0 : -1;
}

int der_pkcs8_p256(const uint8_t *der, size_t len, uint8_t d[AGENT_P256_SCALAR_SIZE])
{
    /* PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier { ecPublicKey, prime256v1 },
     *   privateKey OCTET STRING (ECPrivateKey), attributes [0] OPTIONAL }
     * ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING (32),
     *   parameters [0] OPTIONAL, publicKey [1] OPTIONAL } */
    static const uint8_t zero = 0;
    static const uint8_t one = 1;
    der_reader_t top;
    der_reader_t info;
    der_reader_t alg;
    der_reader_t octets;
    der_reader_t ec;
    der_reader_t scalar;
    der_reader_t skip;
    top.p = der;
    top.end = der + len;
    if (der_next(&top, 0x30, &info) != 0 || top.p != top.end) {
        return -1;
    }
    if (der_expect(&info, 0x02, &zero, 1) != 0 || der_next(&info, 0x30, &alg) != 0 ||
        der_expect(&alg, 0x06, OID_EC_PUBLIC_KEY, sizeof OID_EC_PUBLIC_KEY) != 0 ||
        der_expect(&alg, 0x06, OID_PRIME256V1, sizeof OID_PRIME256V1) != 0 || alg.p != alg.end ||
        der_next(&info, 0x04, &octets) != 0) {
        return -1;
    }
    if (info.p != info.end && (der_next(&info, 0xA0, &skip) != 0 || info.p != info.end)) {
        return -1;
    }
    if (der_next(&octets, 0x30, &ec) != 0 || octets.p != octets.end ||
        der_expect(&ec, 0x02, &one, 1) != 0 || der_next(&ec, 0x04, &scalar) != 0 ||
        scalar.end - scalar.p != (long)AGENT_P256_SCALAR_SIZE) {
        return -1;
    }
    if (ec.p != ec.end && ec.p[0] == 0xA0) {
        der_reader_t params;
        if (der_next(&ec, 0xA0, &params) != 0 ||
            der_expect(&params, 0x06, OID_PRIME256V1, sizeof OID_PRIME256V1) != 0 ||
            params.p != params.end) {
            return -1;
        }
    }
    if (ec.p != ec.end && (der_next(&ec, 0xA1, &skip) != 0 || ec.p != ec.end)) {
        return -1;
    }
    memcpy(d, scalar.p, AGENT_P256_SCALAR_SIZE);
    return 0;
}
