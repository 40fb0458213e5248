/*
 * ops.c - the operations of docs/board-protocol.md section 8 and the message rules of
 * section 3. Where the spec leaves room, behaviour follows the Python lab firmware
 * (station/lab/boards/firmware.py); the clarifications are listed in the spec's section 13.
 */
#include "ops.h"

#include <string.h>

#include "cbor.h"
#include "der.h"

/* ------------------------------------------------------------------ short messages */

typedef struct msg {
    char text[96];
    size_t len;
} msg_t;

static void msg_add(msg_t *m, const char *s, size_t n)
{
    size_t room = sizeof m->text - 1u - m->len;
    if (n > room) {
        n = room;
    }
    memcpy(m->text + m->len, s, n);
    m->len += n;
    m->text[m->len] = '\0';
}

static void msg_set(msg_t *m, const char *s)
{
    m->len = 0;
    msg_add(m, s, strlen(s));
}

static void msg_quoted(msg_t *m, const char *before, const cbor_item_t *text, const char *after)
{
    /* quote at most 32 bytes of what the station sent, cut at a character boundary */
    size_t n = (size_t)text->arg < 32u ? (size_t)text->arg : 32u;
    while (n > 0 && n < text->arg && (text->data[n] & 0xC0u) == 0x80u) {
        n--;
    }
    msg_set(m, before);
    msg_add(m, "'", 1);
    msg_add(m, (const char *)text->data, n);
    msg_add(m, "'", 1);
    msg_add(m, after, strlen(after));
}

/* ------------------------------------------------------------------ operation tables */

enum arg_type { ARG_INT, ARG_BYTES, ARG_TEXT, ARG_BOOL };

typedef struct arg_spec {
    const char *name;
    enum arg_type type;
    int required;
    size_t limit; /* bytes or characters; 0 = none */
} arg_spec_t;

#define MAX_ARGS 3

typedef struct op_args {
    const cbor_item_t *value[MAX_ARGS]; /* NULL when absent */
    cbor_item_t store[MAX_ARGS];
} op_args_t;

typedef struct op_ctx {
    agent_t *agent;
    op_args_t args;
    cbor_writer_t *w; /* positioned where the `res` map goes */
    msg_t *msg;
} op_ctx_t;

typedef int (*op_fn)(op_ctx_t *ctx);

typedef struct op_spec {
    const char *name;
    op_fn run;
    arg_spec_t args[MAX_ARGS];
} op_spec_t;

static int op_hello(op_ctx_t *ctx);
static int op_tpm(op_ctx_t *ctx);
static int op_keygen(op_ctx_t *ctx);
static int op_csr(op_ctx_t *ctx);
static int op_sign(op_ctx_t *ctx);
static int op_write(op_ctx_t *ctx);
static int op_read(op_ctx_t *ctx);
static int op_lock(op_ctx_t *ctx);
static int op_reset(op_ctx_t *ctx);

static const op_spec_t OPS[] = {
    {"hello", op_hello, {{"proto", ARG_INT, 0, 0}, {NULL, ARG_INT, 0, 0}}},
    {"tpm", op_tpm, {{"cmd", ARG_BYTES, 1, AGENT_TPM_MAX}, {NULL, ARG_INT, 0, 0}}},
    {"keygen",
     op_keygen,
     {{"key", ARG_TEXT, 0, 32}, {"replace", ARG_BOOL, 0, 0}, {"curve", ARG_TEXT, 0, 8}}},
    {"csr", op_csr, {{"key", ARG_TEXT, 0, 32}, {"cn", ARG_TEXT, 1, 64}}},
    {"sign", op_sign, {{"key", ARG_TEXT, 0, 32}, {"nonce", ARG_BYTES, 1, 64}}},
    {"write", op_write, {{"name", ARG_TEXT, 1, 32}, {"data", ARG_BYTES, 1, 6144}}},
    {"read", op_read, {{"name", ARG_TEXT, 1, 32}, {NULL, ARG_INT, 0, 0}}},
    {"lock", op_lock, {{NULL, ARG_INT, 0, 0}, {NULL, ARG_INT, 0, 0}}},
    {"reset", op_reset, {{"factory", ARG_BOOL, 0, 0}, {NULL, ARG_INT, 0, 0}}},
};

typedef struct object_spec {
    const char *name;
    enum agent_record record;
    size_t max_size;
    int secret;
    uint32_t needs; /* capability, 0 = any board */
} object_spec_t;

static const object_spec_t OBJECTS[] = {
    {"cert_chain", AGENT_REC_CERT_CHAIN, 6144, 0, 0},
    {"dps", AGENT_REC_DPS, 1024, 0, 0},
    {"symkey", AGENT_REC_SYMKEY, 64, 1, AGENT_CAP_SYMKEY},
    {"privkey", AGENT_REC_PRIVKEY, 2048, 1, AGENT_CAP_PRIVKEY},
};
#define OBJECT_COUNT (sizeof OBJECTS / sizeof OBJECTS[0])

static const char *const CAP_NAMES[] = {"tpm", "se", "privkey", "symkey"};

/* ------------------------------------------------------------------ helpers */

static int type_matches(const cbor_item_t *item, enum arg_type type)
{
    switch (type) {
    case ARG_INT:
        return item->major == CBOR_UINT || item->major == CBOR_NINT;
    case ARG_BYTES:
        return item->major == CBOR_BYTES;
    case ARG_TEXT:
        return item->major == CBOR_TEXT;
    case ARG_BOOL:
        return item->major == CBOR_SIMPLE && item->arg != CBOR_NULL;
    }
    return 0;
}

static size_t item_size(const cbor_item_t *item)
{
    return item->major == CBOR_TEXT ? cbor_utf8_chars(item->data, (size_t)item->arg)
                                    : (size_t)item->arg;
}

static int is_true(const cbor_item_t *item)
{
    return item != NULL && item->arg == CBOR_TRUE;
}

static int require(op_ctx_t *ctx, uint32_t caps, const char *names)
{
    if ((ctx->agent->hal->caps & caps) == 0) {
        msg_set(ctx->msg, "this board has no ");
        msg_add(ctx->msg, names, strlen(names));
        return AGENT_ST_UNSUPPORTED;
    }
    return AGENT_ST_OK;
}

static int unlocked(op_ctx_t *ctx)
{
    if (ctx->agent->locked) {
        msg_set(ctx->msg, "board is locked");
        return AGENT_ST_LOCKED;
    }
    return AGENT_ST_OK;
}

/* The two key slots: "device" (P-256, the X.509 onboarding key) and "operational" (P-384,
 * the key DPS certificate management certifies; secure-element boards only). */
enum key_slot { SLOT_DEVICE = 0, SLOT_OPERATIONAL = 1 };

static int has_operational(const agent_hal_t *hal)
{
    return hal->op_key_generate != NULL && hal->op_key_public != NULL &&
           hal->op_key_sign_hash != NULL && hal->op_key_destroy != NULL && hal->sha384 != NULL;
}

static enum der_curve slot_curve(enum key_slot slot)
{
    return slot == SLOT_OPERATIONAL ? DER_P384 : DER_P256;
}

static int key_slot(op_ctx_t *ctx, enum key_slot *slot)
{
    const cbor_item_t *key = ctx->args.value[0];
    *slot = SLOT_DEVICE;
    if (key == NULL || cbor_text_is(key, "device")) {
        return AGENT_ST_OK;
    }
    if (cbor_text_is(key, "operational") && (ctx->agent->hal->caps & AGENT_CAP_SE) != 0) {
        *slot = SLOT_OPERATIONAL;
        return AGENT_ST_OK;
    }
    msg_quoted(ctx->msg, "no key slot ", key, "");
    return AGENT_ST_NOT_FOUND;
}

/* The public point of the slot's key (65 or 97 bytes). */
static int slot_public(op_ctx_t *ctx, enum key_slot slot, uint8_t pub[AGENT_P384_PUBLIC_SIZE])
{
    const agent_hal_t *hal = ctx->agent->hal;
    int st;
    if (slot == SLOT_OPERATIONAL) {
        st = has_operational(hal) ? hal->op_key_public(hal->ctx, pub) : AGENT_ST_NOT_FOUND;
    } else {
        st = hal->key_public(hal->ctx, pub);
    }
    if (st == AGENT_ST_NOT_FOUND) {
        msg_set(ctx->msg, slot == SLOT_OPERATIONAL ? "no operational key yet" : "no device key yet");
    } else if (st != AGENT_ST_OK) {
        msg_set(ctx->msg, "device key unreadable");
    }
    return st;
}

/* keygen's curve: absent or the slot's own (p256 for device, p384 for operational, which the
 * board must be able to make); any other is unsupported. */
static int slot_curve_ok(op_ctx_t *ctx, enum key_slot slot)
{
    const cbor_item_t *curve = ctx->args.value[2];
    const char *wanted = slot == SLOT_OPERATIONAL ? "p384" : "p256";
    if (curve != NULL && !cbor_text_is(curve, wanted)) {
        msg_quoted(ctx->msg, "this secure element cannot make ", curve, " keys in that slot");
        return AGENT_ST_UNSUPPORTED;
    }
    if (slot == SLOT_OPERATIONAL && !has_operational(ctx->agent->hal)) {
        msg_set(ctx->msg, "this secure element cannot make 'p384' keys");
        return AGENT_ST_UNSUPPORTED;
    }
    return AGENT_ST_OK;
}

static int hal_failed(op_ctx_t *ctx, int st, const char *what)
{
    msg_set(ctx->msg, what);
    return st == AGENT_ST_OK ? AGENT_ST_INTERNAL : st;
}

static const object_spec_t *find_object(op_ctx_t *ctx, const cbor_item_t *name)
{
    size_t i;
    for (i = 0; i < OBJECT_COUNT; i++) {
        if (cbor_text_is(name, OBJECTS[i].name)) {
            return &OBJECTS[i];
        }
    }
    msg_quoted(ctx->msg, "unknown object ", name, "");
    return NULL;
}

/* Read an object's record into the scratch buffer: its generation and content. */
static int load_object(agent_t *agent, const object_spec_t *spec, uint32_t *gen,
                       const uint8_t **data, size_t *len)
{
    size_t size = 0;
    int st = agent->hal->store_read(agent->hal->ctx, spec->record, agent->scratch,
                                    sizeof agent->scratch, &size);
    if (st != AGENT_ST_OK) {
        return st;
    }
    if (size < 4u) {
        return AGENT_ST_INTERNAL;
    }
    *gen = ((uint32_t)agent->scratch[0] << 24) | ((uint32_t)agent->scratch[1] << 16) |
           ((uint32_t)agent->scratch[2] << 8) | agent->scratch[3];
    *data = agent->scratch + 4;
    *len = size - 4u;
    return AGENT_ST_OK;
}

/* ------------------------------------------------------------------ operations */

static int op_hello(op_ctx_t *ctx)
{
    const agent_hal_t *hal = ctx->agent->hal;
    cbor_writer_t *w = ctx->w;
    char serial[256];
    size_t serial_len = hal->serial(hal->ctx, serial, sizeof serial);
    size_t ncaps = 0;
    size_t i;
    for (i = 0; i < 4; i++) {
        ncaps += (hal->caps >> i) & 1u;
    }
    /* keys in RFC 8949 core deterministic order, as the Python board sends them */
    cbor_put_head(w, CBOR_MAP, 8);
    cbor_put_cstr(w, "fw");
    cbor_put_cstr(w, hal->fw);
    cbor_put_cstr(w, "hw");
    cbor_put_cstr(w, hal->hw);
    cbor_put_cstr(w, "max");
    cbor_put_uint(w, AGENT_MAX_PAYLOAD);
    cbor_put_cstr(w, "caps");
    cbor_put_head(w, CBOR_ARRAY, ncaps);
    for (i = 0; i < 4; i++) {
        if ((hal->caps >> i) & 1u) {
            cbor_put_cstr(w, CAP_NAMES[i]);
        }
    }
    cbor_put_cstr(w, "model");
    cbor_put_cstr(w, hal->model);
    cbor_put_cstr(w, "proto");
    cbor_put_uint(w, AGENT_PROTOCOL_VERSION);
    cbor_put_cstr(w, "locked");
    cbor_put_bool(w, ctx->agent->locked);
    cbor_put_cstr(w, "serial");
    cbor_put_text(w, serial, serial_len <= sizeof serial ? serial_len : 0);
    return AGENT_ST_OK;
}

static int op_tpm(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    const agent_hal_t *hal = agent->hal;
    const cbor_item_t *cmd = ctx->args.value[0];
    size_t len = (size_t)cmd->arg;
    size_t rsp_len = 0;
    uint32_t size;
    int st = require(ctx, AGENT_CAP_TPM, "tpm");
    if (st != AGENT_ST_OK) {
        return st;
    }
    size = len >= 10u ? ((uint32_t)cmd->data[2] << 24) | ((uint32_t)cmd->data[3] << 16) |
                            ((uint32_t)cmd->data[4] << 8) | cmd->data[5]
                      : 0u;
    if (len < 10u || size != len) {
        msg_set(ctx->msg, "TPM command header size does not match its length");
        return AGENT_ST_BAD_ARGS;
    }
    if (hal->tpm_transmit == NULL) {
        msg_set(ctx->msg, "TPM not running");
        return AGENT_ST_TPM_FAILURE;
    }
    st = hal->tpm_transmit(hal->ctx, cmd->data, len, agent->scratch, AGENT_TPM_MAX, &rsp_len);
    if (st != AGENT_ST_OK || rsp_len > AGENT_TPM_MAX) {
        msg_set(ctx->msg, "TPM link failed");
        return AGENT_ST_TPM_FAILURE;
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "rsp");
    cbor_put_bytes(ctx->w, agent->scratch, rsp_len);
    return AGENT_ST_OK;
}

static int op_keygen(op_ctx_t *ctx)
{
    const agent_hal_t *hal = ctx->agent->hal;
    uint8_t pub[AGENT_P384_PUBLIC_SIZE];
    uint8_t *spki;
    enum key_slot slot = SLOT_DEVICE;
    int st = require(ctx, AGENT_CAP_SE, "se");
    if (st == AGENT_ST_OK) {
        st = key_slot(ctx, &slot);
    }
    if (st == AGENT_ST_OK) {
        st = unlocked(ctx);
    }
    if (st == AGENT_ST_OK) {
        st = slot_curve_ok(ctx, slot);
    }
    if (st != AGENT_ST_OK) {
        return st;
    }
    if (slot_public(ctx, slot, pub) == AGENT_ST_OK && !is_true(ctx->args.value[1])) {
        msg_set(ctx->msg, "the key exists; pass replace to make a new one");
        return AGENT_ST_EXISTS;
    }
    st = slot == SLOT_OPERATIONAL ? hal->op_key_generate(hal->ctx) : hal->key_generate(hal->ctx);
    if (st != AGENT_ST_OK) {
        return hal_failed(ctx, st, "key generation failed");
    }
    st = slot_public(ctx, slot, pub);
    if (st != AGENT_ST_OK) {
        return st;
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "pub");
    spki = cbor_put_bytes_slot(ctx->w, der_spki_size(slot_curve(slot)));
    if (spki != NULL) {
        der_spki(slot_curve(slot), pub, spki);
    }
    return AGENT_ST_OK;
}

/* Sign data with the slot's key: ECDSA-SHA256 (device) or ECDSA-SHA384 (operational), DER. */
static int sign_digest_der(op_ctx_t *ctx, enum key_slot slot, const uint8_t *data, size_t len,
                           uint8_t *sig_der, size_t *sig_len)
{
    const agent_hal_t *hal = ctx->agent->hal;
    uint8_t digest[AGENT_SHA384_SIZE];
    uint8_t rs[AGENT_P384_SIGNATURE_SIZE];
    int st;
    if (slot == SLOT_OPERATIONAL) {
        st = hal->sha384(hal->ctx, data, len, digest);
        if (st == AGENT_ST_OK) {
            st = hal->op_key_sign_hash(hal->ctx, digest, rs);
        }
    } else {
        st = hal->sha256(hal->ctx, data, len, digest);
        if (st == AGENT_ST_OK) {
            st = hal->key_sign_hash(hal->ctx, digest, rs);
        }
    }
    if (st != AGENT_ST_OK) {
        return hal_failed(ctx, st, "signing failed");
    }
    *sig_len = der_signature(slot_curve(slot), rs, sig_der);
    return AGENT_ST_OK;
}

static int op_csr(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    const cbor_item_t *cn = ctx->args.value[1];
    uint8_t pub[AGENT_P384_PUBLIC_SIZE];
    uint8_t sig[AGENT_SIG_DER_MAX];
    size_t sig_len = 0;
    size_t info_len;
    size_t csr_len;
    enum key_slot slot = SLOT_DEVICE;
    int st = require(ctx, AGENT_CAP_SE | AGENT_CAP_PRIVKEY, "se or privkey");
    if (st == AGENT_ST_OK) {
        st = key_slot(ctx, &slot);
    }
    if (st == AGENT_ST_OK) {
        st = slot_public(ctx, slot, pub);
    }
    if (st != AGENT_ST_OK) {
        return st;
    }
    if (cn->arg == 0) {
        msg_set(ctx->msg, "bad common name: it must be 1 to 64 characters");
        return AGENT_ST_BAD_ARGS;
    }
    info_len = der_csr_info(slot_curve(slot), cn->data, (size_t)cn->arg, pub, agent->scratch,
                            sizeof agent->scratch);
    if (info_len == 0) {
        return hal_failed(ctx, AGENT_ST_INTERNAL, "CSR does not fit");
    }
    st = sign_digest_der(ctx, slot, agent->scratch, info_len, sig, &sig_len);
    if (st != AGENT_ST_OK) {
        return st;
    }
    csr_len = der_csr_finish(slot_curve(slot), agent->scratch, sizeof agent->scratch, info_len,
                             sig, sig_len);
    if (csr_len == 0) {
        return hal_failed(ctx, AGENT_ST_INTERNAL, "CSR does not fit");
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "csr");
    cbor_put_bytes(ctx->w, agent->scratch, csr_len);
    return AGENT_ST_OK;
}

static int op_sign(op_ctx_t *ctx)
{
    const cbor_item_t *nonce = ctx->args.value[1];
    uint8_t pub[AGENT_P384_PUBLIC_SIZE];
    uint8_t sig[AGENT_SIG_DER_MAX];
    size_t sig_len = 0;
    enum key_slot slot = SLOT_DEVICE;
    int st = require(ctx, AGENT_CAP_SE | AGENT_CAP_PRIVKEY, "se or privkey");
    if (st == AGENT_ST_OK) {
        st = key_slot(ctx, &slot);
    }
    if (st == AGENT_ST_OK) {
        st = slot_public(ctx, slot, pub);
    }
    if (st == AGENT_ST_OK) {
        st = sign_digest_der(ctx, slot, nonce->data, (size_t)nonce->arg, sig, &sig_len);
    }
    if (st != AGENT_ST_OK) {
        return st;
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "sig");
    cbor_put_bytes(ctx->w, sig, sig_len);
    return AGENT_ST_OK;
}

static int valid_dps(const uint8_t *data, size_t len)
{
    /* a CBOR map in which endpoint, scope and rid are text (other entries are allowed) */
    static const char *const fields[3] = {"endpoint", "scope", "rid"};
    static const cbor_limits_t limits = {16u, 1024u, 0, 0u};
    cbor_reader_t r;
    cbor_item_t map;
    uint64_t i;
    unsigned found = 0;
    if (cbor_check(data, len, &limits) != 0) {
        return 0;
    }
    r.p = data;
    r.end = data + len;
    if (cbor_read_head(&r, &map) != 0 || map.major != CBOR_MAP) {
        return 0;
    }
    for (i = 0; i < map.arg; i++) {
        cbor_item_t key;
        cbor_item_t value;
        size_t f;
        if (cbor_read_head(&r, &key) != 0 || cbor_read_head(&r, &value) != 0) {
            return 0;
        }
        for (f = 0; f < 3; f++) {
            if (cbor_text_is(&key, fields[f])) {
                /* a repeated key counts with its last value, as in a decoded map */
                found = value.major == CBOR_TEXT ? (found | (1u << f)) : (found & ~(1u << f));
            }
        }
        if (cbor_skip_rest(&r, &value, 1, &limits) != 0) {
            return 0;
        }
    }
    return found == 7u;
}

static int validate_object(op_ctx_t *ctx, const object_spec_t *spec, const cbor_item_t *data)
{
    const agent_hal_t *hal = ctx->agent->hal;
    size_t len = (size_t)data->arg;
    uint8_t d[AGENT_P256_SCALAR_SIZE];
    int st;
    if (spec->record == AGENT_REC_SYMKEY && (len < 16u || len > 64u)) {
        msg_set(ctx->msg, "symkey must be 16..64 bytes");
        return AGENT_ST_BAD_ARGS;
    }
    if (spec->record == AGENT_REC_DPS && !valid_dps(data->data, len)) {
        msg_set(ctx->msg, "dps must map endpoint, scope and rid to text");
        return AGENT_ST_BAD_ARGS;
    }
    if (spec->record == AGENT_REC_PRIVKEY) {
        if (der_pkcs8_p256(data->data, len, d) != 0) {
            msg_set(ctx->msg, "privkey must be an unencrypted PKCS#8 DER P-256 key");
            return AGENT_ST_BAD_ARGS;
        }
        st = hal->key_import(hal->ctx, d);
        memset(d, 0, sizeof d);
        if (st == AGENT_ST_BAD_ARGS) {
            msg_set(ctx->msg, "privkey is not a valid P-256 private key");
            return st;
        }
        if (st != AGENT_ST_OK) {
            return hal_failed(ctx, st, "key import failed");
        }
    }
    return AGENT_ST_OK;
}

static int op_write(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    const agent_hal_t *hal = agent->hal;
    const cbor_item_t *data = ctx->args.value[1];
    const object_spec_t *spec = find_object(ctx, ctx->args.value[0]);
    const uint8_t *old = NULL;
    size_t old_len = 0;
    uint32_t gen = 0;
    int st;
    if (spec == NULL) {
        return AGENT_ST_BAD_ARGS;
    }
    st = spec->needs ? require(ctx, spec->needs, spec->name) : AGENT_ST_OK;
    if (st == AGENT_ST_OK) {
        st = unlocked(ctx);
    }
    if (st != AGENT_ST_OK) {
        return st;
    }
    if (data->arg > spec->max_size) {
        msg_quoted(ctx->msg, "", ctx->args.value[0], " is larger than the object's maximum");
        return AGENT_ST_TOO_LARGE;
    }
    st = validate_object(ctx, spec, data);
    if (st != AGENT_ST_OK) {
        return st;
    }
    st = load_object(agent, spec, &gen, &old, &old_len);
    if (st == AGENT_ST_NOT_FOUND) {
        gen = 0;
    } else if (st != AGENT_ST_OK) {
        return hal_failed(ctx, st, "object storage unreadable");
    }
    gen++;
    agent->scratch[0] = (uint8_t)(gen >> 24);
    agent->scratch[1] = (uint8_t)(gen >> 16);
    agent->scratch[2] = (uint8_t)(gen >> 8);
    agent->scratch[3] = (uint8_t)gen;
    memcpy(agent->scratch + 4, data->data, (size_t)data->arg);
    st = hal->store_write(hal->ctx, spec->record, agent->scratch, 4u + (size_t)data->arg);
    if (st != AGENT_ST_OK) {
        return hal_failed(ctx, st, "object storage write failed");
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "gen");
    cbor_put_uint(ctx->w, gen);
    return AGENT_ST_OK;
}

static int op_read(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    const object_spec_t *spec = find_object(ctx, ctx->args.value[0]);
    const uint8_t *data = NULL;
    size_t len = 0;
    uint32_t gen = 0;
    int st;
    if (spec == NULL) {
        return AGENT_ST_BAD_ARGS;
    }
    st = load_object(agent, spec, &gen, &data, &len);
    if (st == AGENT_ST_NOT_FOUND) {
        msg_quoted(ctx->msg, "", ctx->args.value[0], " was never written");
        return st;
    }
    if (st != AGENT_ST_OK) {
        return hal_failed(ctx, st, "object storage unreadable");
    }
    cbor_put_head(ctx->w, CBOR_MAP, 2);
    cbor_put_cstr(ctx->w, "gen");
    cbor_put_uint(ctx->w, gen);
    if (spec->secret) {
        uint8_t digest[AGENT_SHA256_SIZE];
        st = agent->hal->sha256(agent->hal->ctx, data, len, digest);
        if (st != AGENT_ST_OK) {
            return hal_failed(ctx, st, "hashing failed");
        }
        cbor_put_cstr(ctx->w, "sha256");
        cbor_put_bytes(ctx->w, digest, sizeof digest);
    } else {
        cbor_put_cstr(ctx->w, "data");
        cbor_put_bytes(ctx->w, data, len);
    }
    return AGENT_ST_OK;
}

static int op_lock(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    if (!agent->locked) {
        static const uint8_t one = 1;
        int st = agent->hal->store_write(agent->hal->ctx, AGENT_REC_LOCK, &one, 1);
        if (st != AGENT_ST_OK) {
            return hal_failed(ctx, st, "cannot store the lock flag");
        }
        agent->locked = 1;
    }
    cbor_put_head(ctx->w, CBOR_MAP, 1);
    cbor_put_cstr(ctx->w, "locked");
    cbor_put_bool(ctx->w, 1);
    return AGENT_ST_OK;
}

static int op_reset(op_ctx_t *ctx)
{
    agent_t *agent = ctx->agent;
    const agent_hal_t *hal = agent->hal;
    if (is_true(ctx->args.value[0])) {
        size_t i;
        int st = unlocked(ctx);
        if (st != AGENT_ST_OK) {
            return st;
        }
        for (i = 0; i < OBJECT_COUNT && st == AGENT_ST_OK; i++) {
            st = hal->store_erase(hal->ctx, OBJECTS[i].record);
        }
        if (st == AGENT_ST_OK) {
            st = hal->key_destroy(hal->ctx);
        }
        if (st == AGENT_ST_OK && has_operational(hal)) {
            st = hal->op_key_destroy(hal->ctx);
        }
        if (st != AGENT_ST_OK) {
            return hal_failed(ctx, st, "factory reset failed");
        }
    }
    /* the idempotency copy is cleared; this answer then becomes the new copy (as in the
     * Python board), so a retried reset is replayed, not run twice */
    agent->last_req_len = 0;
    agent->last_rsp_len = 0;
    agent->pending_reset = is_true(ctx->args.value[0]) ? 2 : 1;
    cbor_put_head(ctx->w, CBOR_MAP, 0);
    return AGENT_ST_OK;
}

/* ------------------------------------------------------------------ requests */

typedef struct request {
    uint32_t seq;
    cbor_item_t op;
    cbor_reader_t args;
    uint64_t nargs;
} request_t;

static const cbor_limits_t MESSAGE_LIMITS = {AGENT_MAX_DEPTH, AGENT_MAX_ITEMS, 1,
                                              AGENT_MAX_TOTAL_ITEMS};

static int decode_request(const uint8_t *payload, size_t len, request_t *req, msg_t *msg)
{
    cbor_reader_t r;
    cbor_item_t map;
    uint64_t i;
    int has_seq = 0;
    int has_op = 0;
    req->nargs = 0;
    req->args.p = req->args.end = payload;
    if (cbor_check(payload, len, &MESSAGE_LIMITS) != 0) {
        msg_set(msg, "not a CBOR message within the protocol's limits");
        return -1;
    }
    r.p = payload;
    r.end = payload + len;
    (void)cbor_read_head(&r, &map);
    if (map.major != CBOR_MAP) {
        msg_set(msg, "message is not a CBOR map");
        return -1;
    }
    for (i = 0; i < map.arg; i++) {
        cbor_item_t key;
        cbor_item_t value;
        (void)cbor_read_head(&r, &key);
        (void)cbor_read_head(&r, &value);
        if (cbor_text_is(&key, "seq")) {
            if (value.major != CBOR_UINT || value.arg < 1u || value.arg > 0xFFFFFFFFu) {
                msg_set(msg, "'seq' must be an integer 1..4294967295");
                return -1;
            }
            req->seq = (uint32_t)value.arg;
            has_seq = 1;
        } else if (cbor_text_is(&key, "op")) {
            if (value.major != CBOR_TEXT || value.arg == 0) {
                msg_set(msg, "'op' must be non-empty text");
                return -1;
            }
            req->op = value;
            has_op = 1;
        } else if (cbor_text_is(&key, "args")) {
            if (value.major != CBOR_MAP) {
                msg_set(msg, "'args' must be a map with text keys");
                return -1;
            }
            req->args.p = r.p;
            req->nargs = value.arg;
        } else {
            msg_quoted(msg, "unknown field ", &key, "");
            return -1;
        }
        (void)cbor_skip_rest(&r, &value, 1, &MESSAGE_LIMITS);
        if (cbor_text_is(&key, "args")) {
            req->args.end = r.p;
        }
    }
    if (!has_seq) {
        msg_set(msg, "'seq' must be an integer 1..4294967295");
        return -1;
    }
    if (!has_op) {
        msg_set(msg, "'op' must be non-empty text");
        return -1;
    }
    return 0;
}

static int check_args(const op_spec_t *op, request_t *req, op_args_t *args, msg_t *msg)
{
    cbor_reader_t r = req->args;
    uint64_t i;
    size_t a;
    for (a = 0; a < MAX_ARGS; a++) {
        args->value[a] = NULL;
    }
    for (i = 0; i < req->nargs; i++) {
        cbor_item_t key;
        cbor_item_t value;
        const arg_spec_t *spec = NULL;
        (void)cbor_read_head(&r, &key);
        (void)cbor_read_head(&r, &value);
        for (a = 0; a < MAX_ARGS; a++) {
            if (op->args[a].name != NULL && cbor_text_is(&key, op->args[a].name)) {
                spec = &op->args[a];
                break;
            }
        }
        if (spec == NULL) {
            msg_quoted(msg, "unknown argument ", &key, "");
            return AGENT_ST_BAD_ARGS;
        }
        if (!type_matches(&value, spec->type)) {
            msg_quoted(msg, "argument ", &key, " has the wrong type");
            return AGENT_ST_BAD_ARGS;
        }
        if (spec->limit != 0 && item_size(&value) > spec->limit) {
            msg_quoted(msg, "argument ", &key, " is too long");
            return AGENT_ST_BAD_ARGS;
        }
        args->store[a] = value;
        args->value[a] = &args->store[a];
        (void)cbor_skip_rest(&r, &value, 2, &MESSAGE_LIMITS);
    }
    for (a = 0; a < MAX_ARGS; a++) {
        if (op->args[a].name != NULL && op->args[a].required && args->value[a] == NULL) {
            msg_set(msg, "missing argument '");
            msg_add(msg, op->args[a].name, strlen(op->args[a].name));
            msg_add(msg, "'", 1);
            return AGENT_ST_BAD_ARGS;
        }
    }
    return AGENT_ST_OK;
}

static size_t error_answer(uint32_t seq, int status, const msg_t *msg, uint8_t *out, size_t cap)
{
    cbor_writer_t w;
    cbor_writer_init(&w, out, cap);
    cbor_put_head(&w, CBOR_MAP, 3);
    cbor_put_cstr(&w, "st");
    cbor_put_uint(&w, (uint64_t)status);
    cbor_put_cstr(&w, "msg");
    cbor_put_text(&w, msg->text, msg->len);
    cbor_put_cstr(&w, "seq");
    cbor_put_uint(&w, seq);
    return w.overflow ? 0 : w.len;
}

size_t ops_nak(int status, const char *reason, uint8_t *out, size_t cap)
{
    msg_t msg;
    msg_set(&msg, reason);
    return error_answer(0, status, &msg, out, cap);
}

size_t ops_answer(agent_t *agent, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                  int *stored)
{
    request_t req;
    op_ctx_t ctx;
    msg_t msg;
    const op_spec_t *op = NULL;
    cbor_writer_t w;
    size_t i;
    int st;
    msg.len = 0;
    msg.text[0] = '\0';
    agent->current_op[0] = '\0';
    *stored = 0;
    if (decode_request(payload, len, &req, &msg) != 0) {
        return error_answer(0, AGENT_ST_MALFORMED, &msg, out, cap);
    }
    *stored = 1;
    if (req.op.arg <= AGENT_MAX_OP) {
        memcpy(agent->current_op, req.op.data, (size_t)req.op.arg);
        agent->current_op[req.op.arg] = '\0';
    }
    for (i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        if (cbor_text_is(&req.op, OPS[i].name)) {
            op = &OPS[i];
        }
    }
    if (op == NULL) {
        msg_quoted(&msg, "unknown op ", &req.op, "");
        return error_answer(req.seq, AGENT_ST_UNKNOWN_OP, &msg, out, cap);
    }
    ctx.agent = agent;
    ctx.msg = &msg;
    ctx.w = &w;
    st = check_args(op, &req, &ctx.args, &msg);
    if (st == AGENT_ST_OK) {
        /* {"st": 0, "res": {...}, "seq": n}: keys in core deterministic order */
        cbor_writer_init(&w, out, cap);
        cbor_put_head(&w, CBOR_MAP, 3);
        cbor_put_cstr(&w, "st");
        cbor_put_uint(&w, 0);
        cbor_put_cstr(&w, "res");
        st = op->run(&ctx);
        cbor_put_cstr(&w, "seq");
        cbor_put_uint(&w, req.seq);
        if (st == AGENT_ST_OK && w.overflow) {
            msg_set(&msg, "answer does not fit in a frame");
            st = AGENT_ST_INTERNAL;
        }
    }
    if (st != AGENT_ST_OK) {
        if (msg.len == 0) {
            msg_set(&msg, "internal error");
        }
        return error_answer(req.seq, st, &msg, out, cap);
    }
    return w.len;
}
