/*
 * agent.c - the frame layer (section 2), replay of the last answer (section 5.2) and the
 * public entry points.
 */
#include <string.h>

#include "ops.h"
#include "station_agent.h"

void agent_init(agent_t *agent, const agent_hal_t *hal)
{
    uint8_t flag = 0;
    size_t len = 0;
    memset(agent, 0, sizeof *agent);
    agent->hal = hal;
    if (hal->store_read(hal->ctx, AGENT_REC_LOCK, &flag, 1, &len) == AGENT_ST_OK && len == 1) {
        agent->locked = flag == 1;
    }
}

const char *agent_current_op(const agent_t *agent)
{
    return agent->current_op;
}

const agent_stats_t *agent_stats(const agent_t *agent)
{
    return &agent->stats;
}

/* Answer payload into agent->last_rsp (a request) or agent->small (an unreadable message);
 * returns where the answer is and sets *len. */
static const uint8_t *answer(agent_t *agent, const uint8_t *payload, size_t len, size_t *out_len)
{
    int stored = 0;
    size_t n;
    if (agent->last_req_len == len && len > 0 && memcmp(agent->last_req, payload, len) == 0) {
        /* a retry: send the stored answer again, do not apply the request twice */
        agent->stats.replayed++;
        memcpy(agent->current_op, agent->last_op, sizeof agent->current_op);
        *out_len = agent->last_rsp_len;
        return agent->last_rsp;
    }
    /* build in tx (free until the frame is encoded), keep only a readable request's answer */
    n = ops_answer(agent, payload, len, agent->tx, AGENT_MAX_PAYLOAD, &stored);
    if (!stored) {
        if (n > sizeof agent->small) {
            n = 0;
        }
        memcpy(agent->small, agent->tx, n);
        *out_len = n;
        return agent->small;
    }
    agent->stats.executed++;
    memcpy(agent->last_rsp, agent->tx, n);
    agent->last_rsp_len = n;
    memmove(agent->last_req, payload, len);
    agent->last_req_len = len;
    memcpy(agent->last_op, agent->current_op, sizeof agent->last_op);
    *out_len = n;
    return agent->last_rsp;
}

size_t agent_handle(agent_t *agent, const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    const uint8_t *rsp;
    if (len > AGENT_MAX_PAYLOAD) {
        return 0;
    }
    rsp = answer(agent, payload, len, &n);
    if (n > cap) {
        return 0;
    }
    memcpy(out, rsp, n);
    return n;
}

/* COBS(payload || CRC32-LE(payload)) || 0x00 through hal->uart_write, in one call. */
static void send_frame(agent_t *agent, const uint8_t *payload, size_t len)
{
    uint32_t crc = agent_crc32(payload, len);
    uint8_t trailer[AGENT_CRC_SIZE];
    size_t code_index = 0;
    size_t o = 1;
    uint8_t code = 1;
    size_t i;
    if (len == 0 || len > AGENT_MAX_PAYLOAD) {
        return;
    }
    trailer[0] = (uint8_t)crc;
    trailer[1] = (uint8_t)(crc >> 8);
    trailer[2] = (uint8_t)(crc >> 16);
    trailer[3] = (uint8_t)(crc >> 24);
    /* COBS over the two pieces without copying them together (as agent_cobs_encode) */
    for (i = 0; i < len + AGENT_CRC_SIZE; i++) {
        uint8_t byte = i < len ? payload[i] : trailer[i - len];
        if (byte == 0) {
            agent->tx[code_index] = code;
            code_index = o++;
            code = 1;
            continue;
        }
        agent->tx[o++] = byte;
        if (++code == 0xFF) {
            agent->tx[code_index] = code;
            code_index = o++;
            code = 1;
        }
    }
    agent->tx[code_index] = code;
    agent->tx[o++] = 0x00;
    agent->hal->uart_write(agent->hal->ctx, agent->tx, o);
}

static void send_nak(agent_t *agent, int status, const char *reason)
{
    size_t n = ops_nak(status, reason, agent->small, sizeof agent->small);
    agent->current_op[0] = '\0';
    send_frame(agent, agent->small, n);
}

/* The 0x00 of a frame arrived: check it and answer. */
static void end_of_frame(agent_t *agent)
{
    size_t len;
    size_t n = 0;
    const uint8_t *rsp;
    if (agent->rx_overflow) {
        agent->rx_overflow = 0;
        agent->rx_len = 0;
        agent->stats.oversize++;
        send_nak(agent, AGENT_ST_TOO_LARGE, "oversized");
        return;
    }
    if (agent->rx_len == 0) {
        return; /* empty frame: the station's leading delimiter */
    }
    len = agent_cobs_decode(agent->rx, agent->rx_len);
    agent->rx_len = 0;
    if (len == (size_t)-1) {
        agent->stats.bad++;
        send_nak(agent, AGENT_ST_MALFORMED, "bad_cobs");
        return;
    }
    if (len < AGENT_CRC_SIZE) {
        agent->stats.bad++;
        send_nak(agent, AGENT_ST_MALFORMED, "too_short");
        return;
    }
    len -= AGENT_CRC_SIZE;
    if (agent_crc32(agent->rx, len) !=
        ((uint32_t)agent->rx[len] | ((uint32_t)agent->rx[len + 1] << 8) |
         ((uint32_t)agent->rx[len + 2] << 16) | ((uint32_t)agent->rx[len + 3] << 24))) {
        agent->stats.bad++;
        send_nak(agent, AGENT_ST_MALFORMED, "bad_crc");
        return;
    }
    if (len > AGENT_MAX_PAYLOAD) {
        /* a valid frame can hold up to 8224 bytes, but a payload is at most 8192 (section 2) */
        agent->stats.oversize++;
        send_nak(agent, AGENT_ST_TOO_LARGE, "oversized");
        return;
    }
    agent->stats.frames++;
    rsp = answer(agent, agent->rx, len, &n);
    send_frame(agent, rsp, n);
    if (agent->pending_reset != 0) {
        /* a board that really reboots does so only after its answer went out (section 8) */
        int factory = agent->pending_reset == 2;
        agent->pending_reset = 0;
        if (agent->hal->reset != NULL) {
            agent->hal->reset(agent->hal->ctx, factory);
        }
    }
}

void agent_feed(agent_t *agent, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        uint8_t byte = data[i];
        if (byte == 0) {
            end_of_frame(agent);
            continue;
        }
        if (agent->rx_overflow) {
            continue; /* dropping an oversized frame up to its 0x00 */
        }
        if (agent->rx_len >= AGENT_MAX_ENCODED) {
            agent->rx_overflow = 1;
            agent->rx_len = 0;
            continue;
        }
        agent->rx[agent->rx_len++] = byte;
    }
}

size_t agent_poll(agent_t *agent)
{
    uint8_t buf[256];
    size_t n;
    if (agent->hal->uart_read == NULL) {
        return 0;
    }
    n = agent->hal->uart_read(agent->hal->ctx, buf, sizeof buf);
    if (n > sizeof buf) {
        n = sizeof buf;
    }
    agent_feed(agent, buf, n);
    return n;
}
