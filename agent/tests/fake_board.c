/*
 * fake_board.c - the unit tests' HAL.
 */
#include "fake_board.h"

#include <string.h>

#include "agent_psa.h"

static size_t serial(void *ctx, char *out, size_t cap)
{
    fake_board_t *board = ctx;
    size_t n = strlen(board->serial);
    if (n > cap) {
        return 0;
    }
    memcpy(out, board->serial, n);
    return n;
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    fake_board_t *board = ctx;
    if (board->sent_len + len <= sizeof board->sent) {
        memcpy(board->sent + board->sent_len, data, len);
        board->sent_len += len;
    }
    board->frames_sent++;
}

static int store_read(void *ctx, enum agent_record id, uint8_t *buf, size_t cap, size_t *len)
{
    fake_board_t *board = ctx;
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
    fake_board_t *board = ctx;
    if (len > AGENT_RECORD_MAX) {
        return AGENT_ST_INTERNAL;
    }
    memcpy(board->records[id], data, len);
    board->record_len[id] = len;
    board->record_set[id] = 1;
    return AGENT_ST_OK;
}

static int store_erase(void *ctx, enum agent_record id)
{
    fake_board_t *board = ctx;
    board->record_set[id] = 0;
    return AGENT_ST_OK;
}

/* The fake TPM answers every command with TPM_RC_SUCCESS and the command code echoed. */
static int tpm_transmit(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                        size_t *rsp_len)
{
    static const uint8_t header[10] = {0x80, 0x01, 0, 0, 0, 14, 0, 0, 0, 0};
    (void)ctx;
    (void)len;
    if (cap < 14u) {
        return AGENT_ST_TPM_FAILURE;
    }
    memcpy(rsp, header, sizeof header);
    memcpy(rsp + 10, cmd + 6, 4);
    *rsp_len = 14;
    return AGENT_ST_OK;
}

static void reset(void *ctx, int factory)
{
    fake_board_t *board = ctx;
    board->resets += factory ? 100 : 1;
}

void fake_board_init(fake_board_t *board, uint32_t caps)
{
    memset(board, 0, sizeof *board);
    board->serial = "SN-TEST-1";
    board->hal.ctx = board;
    board->hal.caps = caps;
    board->hal.model = "TEST-1";
    board->hal.hw = "rev-A";
    board->hal.fw = "0.1";
    board->hal.serial = serial;
    board->hal.uart_write = uart_write;
    board->hal.store_read = store_read;
    board->hal.store_write = store_write;
    board->hal.store_erase = store_erase;
    board->hal.tpm_transmit = (caps & AGENT_CAP_TPM) ? tpm_transmit : NULL;
    board->hal.reset = reset;
    agent_psa_fill_hal(&board->hal);
    (void)agent_psa_init();
    (void)agent_psa_key_destroy(NULL);
    (void)agent_psa_op_key_destroy(NULL);
}
