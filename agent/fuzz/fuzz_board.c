/*
 * fuzz_board.c - the fuzz targets' fake board (see fuzz_board.h).
 */
#include "fuzz_board.h"

#include <stdlib.h>
#include <string.h>

static size_t serial(void *ctx, char *out, size_t cap)
{
    static const char text[] = "SN-FUZZ-1";
    (void)ctx;
    if (cap < sizeof text - 1u) {
        return 0;
    }
    memcpy(out, text, sizeof text - 1u);
    return sizeof text - 1u;
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    fuzz_board_t *board = ctx;
    if (len > sizeof board->frame[0]) {
        abort(); /* the agent sent more than its largest frame: a bug */
    }
    if (board->frames < FUZZ_MAX_FRAMES) {
        memcpy(board->frame[board->frames], data, len);
        board->frame_len[board->frames] = len;
    }
    board->frames++;
}

static int store_read(void *ctx, enum agent_record id, uint8_t *buf, size_t cap, size_t *len)
{
    fuzz_board_t *board = ctx;
    if ((unsigned)id >= AGENT_REC_COUNT) {
        abort();
    }
    if (!board->record_set[id]) {
        return AGENT_ST_NOT_FOUND;
    }
    if (board->record_len[id] > cap) {
        return AGENT_ST_INTERNAL;
    }
    memcpy(buf, board->records[id], board->record_len[id]);
    *len = board->record_len[id];
    return AGENT_ST_OK;
}

static int store_write(void *ctx, enum agent_record id, const uint8_t *data, size_t len)
{
    fuzz_board_t *board = ctx;
    if ((unsigned)id >= AGENT_REC_COUNT || len > AGENT_RECORD_MAX) {
        abort(); /* the HAL contract: the core never writes more than a record holds */
    }
    memcpy(board->records[id], data, len);
    board->record_len[id] = len;
    board->record_set[id] = 1;
    board->changes++;
    return AGENT_ST_OK;
}

static int store_erase(void *ctx, enum agent_record id)
{
    fuzz_board_t *board = ctx;
    if ((unsigned)id >= AGENT_REC_COUNT) {
        abort();
    }
    board->record_set[id] = 0;
    board->changes++;
    return AGENT_ST_OK;
}

static int key_generate(void *ctx)
{
    fuzz_board_t *board = ctx;
    board->has_key = 1;
    board->changes++;
    return AGENT_ST_OK;
}

static int key_import(void *ctx, const uint8_t d[AGENT_P256_SCALAR_SIZE])
{
    fuzz_board_t *board = ctx;
    static const uint8_t zero[AGENT_P256_SCALAR_SIZE];
    if (memcmp(d, zero, sizeof zero) == 0) {
        return AGENT_ST_BAD_ARGS; /* 0 is not a P-256 private key */
    }
    board->has_key = 1;
    board->changes++;
    return AGENT_ST_OK;
}

static int key_public(void *ctx, uint8_t out[AGENT_P256_PUBLIC_SIZE])
{
    fuzz_board_t *board = ctx;
    if (!board->has_key) {
        return AGENT_ST_NOT_FOUND;
    }
    out[0] = 0x04;
    memset(out + 1, 0x5A, AGENT_P256_PUBLIC_SIZE - 1u);
    return AGENT_ST_OK;
}

static int key_sign_hash(void *ctx, const uint8_t hash[AGENT_SHA256_SIZE],
                         uint8_t sig[AGENT_P256_SIGNATURE_SIZE])
{
    fuzz_board_t *board = ctx;
    if (!board->has_key) {
        return AGENT_ST_NOT_FOUND;
    }
    /* r = the hash (may have leading zero bytes, as real signatures do), s = its inverse */
    for (size_t i = 0; i < AGENT_SHA256_SIZE; i++) {
        sig[i] = hash[i];
        sig[AGENT_SHA256_SIZE + i] = (uint8_t)~hash[i];
    }
    return AGENT_ST_OK;
}

static int key_destroy(void *ctx)
{
    fuzz_board_t *board = ctx;
    board->has_key = 0;
    board->changes++;
    return AGENT_ST_OK;
}

static int sha256(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA256_SIZE])
{
    /* not SHA-256: a cheap deterministic digest, enough to exercise the callers */
    uint32_t h = 2166136261u;
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ data[i]) * 16777619u;
    }
    for (size_t i = 0; i < AGENT_SHA256_SIZE; i++) {
        h = h * 16777619u + (uint32_t)i;
        out[i] = (uint8_t)(h >> 24);
    }
    return AGENT_ST_OK;
}

static int tpm_transmit(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                        size_t *rsp_len)
{
    (void)ctx;
    if (len < 10u || len > AGENT_TPM_MAX) {
        abort(); /* the core checks the command's size before it reaches the TPM */
    }
    if (cap < len) {
        return AGENT_ST_TPM_FAILURE;
    }
    memcpy(rsp, cmd, len); /* a TPM that echoes: any size up to the command's */
    *rsp_len = len;
    return AGENT_ST_OK;
}

static void reset(void *ctx, int factory)
{
    fuzz_board_t *board = ctx;
    (void)factory;
    board->resets++;
}

void fuzz_board_init(fuzz_board_t *board, uint32_t caps)
{
    memset(board->record_set, 0, sizeof board->record_set);
    memset(&board->hal, 0, sizeof board->hal);
    board->has_key = 0;
    board->changes = 0;
    board->resets = 0;
    board->frames = 0;
    board->hal.ctx = board;
    board->hal.caps = caps;
    board->hal.model = "FUZZ-1";
    board->hal.hw = "rev-F";
    board->hal.fw = "0.0.1";
    board->hal.serial = serial;
    board->hal.uart_write = uart_write;
    board->hal.store_read = store_read;
    board->hal.store_write = store_write;
    board->hal.store_erase = store_erase;
    board->hal.key_generate = key_generate;
    board->hal.key_import = key_import;
    board->hal.key_public = key_public;
    board->hal.key_sign_hash = key_sign_hash;
    board->hal.key_destroy = key_destroy;
    board->hal.sha256 = sha256;
    board->hal.tpm_transmit = (caps & AGENT_CAP_TPM) ? tpm_transmit : NULL;
    board->hal.reset = reset;
}
