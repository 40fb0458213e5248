/*
 * test_core.c - unit tests of the agent core against docs/board-protocol.md.
 */
#include <stdio.h>
#include <string.h>

#include "agent_psa.h"
#include "cbor.h"
#include "fake_board.h"
#include "station_agent.h"
#include "test_keys.h"

static int failures;
static int checks;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                                      \
    } while (0)

static agent_t agent;
static fake_board_t board;
static uint8_t req_buf[AGENT_MAX_PAYLOAD + 64];
static uint8_t rsp_buf[AGENT_MAX_PAYLOAD];
static uint8_t big[10000];

typedef struct rsp {
    uint64_t seq;
    uint64_t st;
    cbor_reader_t res; /* positioned after the res map's head */
    uint64_t nres;
    char msg[201];
} rsp_t;

static void fresh(uint32_t caps)
{
    fake_board_init(&board, caps);
    agent_init(&agent, &board.hal);
}

/* Start a request {"seq": seq, "op": op, "args": {nargs entries follow}}. */
static void request(cbor_writer_t *w, uint64_t seq, const char *op, uint64_t nargs)
{
    cbor_writer_init(w, req_buf, sizeof req_buf);
    cbor_put_head(w, CBOR_MAP, 3);
    cbor_put_cstr(w, "seq");
    cbor_put_uint(w, seq);
    cbor_put_cstr(w, "op");
    cbor_put_cstr(w, op);
    cbor_put_cstr(w, "args");
    cbor_put_head(w, CBOR_MAP, nargs);
}

static rsp_t parse(const uint8_t *payload, size_t len)
{
    rsp_t r;
    cbor_reader_t rd;
    cbor_item_t map;
    uint64_t i;
    static const cbor_limits_t limits = {6, 64, 1, 0};
    memset(&r, 0, sizeof r);
    r.st = 999;
    CHECK(len > 0 && cbor_check(payload, len, &limits) == 0);
    rd.p = payload;
    rd.end = payload + len;
    if (cbor_read_head(&rd, &map) != 0 || map.major != CBOR_MAP) {
        return r;
    }
    for (i = 0; i < map.arg; i++) {
        cbor_item_t key;
        cbor_item_t value;
        (void)cbor_read_head(&rd, &key);
        (void)cbor_read_head(&rd, &value);
        if (cbor_text_is(&key, "seq")) {
            r.seq = value.arg;
        } else if (cbor_text_is(&key, "st")) {
            r.st = value.arg;
        } else if (cbor_text_is(&key, "msg")) {
            memcpy(r.msg, value.data, value.arg < 200 ? (size_t)value.arg : 200);
        } else if (cbor_text_is(&key, "res")) {
            r.res = rd;
            r.nres = value.arg;
        }
        (void)cbor_skip_rest(&rd, &value, 1, &limits);
    }
    return r;
}

static rsp_t send_raw(const uint8_t *payload, size_t len)
{
    size_t n = agent_handle(&agent, payload, len, rsp_buf, sizeof rsp_buf);
    return parse(rsp_buf, n);
}

static rsp_t send(const cbor_writer_t *w)
{
    CHECK(!w->overflow);
    return send_raw(w->buf, w->len);
}

/* The value of result field name (major -1 if absent). */
static cbor_item_t field(const rsp_t *r, const char *name)
{
    cbor_reader_t rd = r->res;
    cbor_item_t none;
    uint64_t i;
    static const cbor_limits_t limits = {6, 64, 1, 0};
    none.major = -1;
    none.arg = 0;
    none.data = NULL;
    for (i = 0; i < r->nres; i++) {
        cbor_item_t key;
        cbor_item_t value;
        (void)cbor_read_head(&rd, &key);
        (void)cbor_read_head(&rd, &value);
        if (cbor_text_is(&key, name)) {
            return value;
        }
        (void)cbor_skip_rest(&rd, &value, 2, &limits);
    }
    return none;
}

static rsp_t simple(uint64_t seq, const char *op)
{
    cbor_writer_t w;
    request(&w, seq, op, 0);
    return send(&w);
}

static rsp_t write_object(uint64_t seq, const char *name, const uint8_t *data, size_t len)
{
    cbor_writer_t w;
    request(&w, seq, "write", 2);
    cbor_put_cstr(&w, "name");
    cbor_put_cstr(&w, name);
    cbor_put_cstr(&w, "data");
    cbor_put_bytes(&w, data, len);
    return send(&w);
}

static rsp_t read_object(uint64_t seq, const char *name)
{
    cbor_writer_t w;
    request(&w, seq, "read", 1);
    cbor_put_cstr(&w, "name");
    cbor_put_cstr(&w, name);
    return send(&w);
}

/* ------------------------------------------------------------------ frame layer */

static void test_crc_and_cobs(void)
{
    static uint8_t data[700];
    static uint8_t enc[800];
    size_t len;
    size_t i;
    static uint8_t bad[3] = {0x05, 0x11, 0x22};
    static uint8_t zero_in_block[3] = {0x03, 0x00, 0x22};
    CHECK(agent_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u);
    for (len = 0; len < sizeof data; len += 37) {
        size_t n;
        size_t m;
        for (i = 0; i < len; i++) {
            data[i] = (uint8_t)(len % 3 == 0 ? (i % 7 == 0 ? 0 : i) : (i % 255) + 1);
        }
        n = agent_cobs_encode(data, len, enc, sizeof enc);
        CHECK(n == len + len / 254 + 1 || n <= len + len / 254 + 1);
        CHECK(memchr(enc, 0, n) == NULL);
        m = agent_cobs_decode(enc, n);
        CHECK(m == len && memcmp(enc, data, len) == 0);
    }
    CHECK(agent_cobs_decode(bad, sizeof bad) == (size_t)-1);
    CHECK(agent_cobs_decode(zero_in_block, sizeof zero_in_block) == (size_t)-1);
}

static void feed_hex(const char *hex)
{
    uint8_t buf[256];
    size_t n = 0;
    unsigned v;
    while (sscanf(hex, "%2x", &v) == 1) {
        buf[n++] = (uint8_t)v;
        hex += 2;
        while (*hex == ' ') {
            hex++;
        }
    }
    agent_feed(&agent, buf, n);
}

/* Decode the frames the board sent; returns the payload of frame index. */
static size_t sent_payload(size_t index, uint8_t *out)
{
    size_t start = 0;
    size_t i;
    size_t k = 0;
    for (i = 0; i < board.sent_len; i++) {
        if (board.sent[i] == 0) {
            if (k == index) {
                size_t n;
                memcpy(out, board.sent + start, i - start);
                n = agent_cobs_decode(out, i - start);
                CHECK(n != (size_t)-1 && n >= 4);
                CHECK(agent_crc32(out, n - 4) == ((uint32_t)out[n - 4] | (uint32_t)out[n - 3] << 8 |
                                                  (uint32_t)out[n - 2] << 16 |
                                                  (uint32_t)out[n - 1] << 24));
                return n - 4;
            }
            k++;
            start = i + 1;
        }
    }
    CHECK(0 && "frame missing");
    return 0;
}

static void test_spec_examples(void)
{
    static const uint8_t answer[] = {0x05, 0xa3, 0x62, 0x73, 0x74, 0x14, 0x63, 0x72, 0x65,
                                     0x73, 0xa1, 0x63, 0x67, 0x65, 0x6e, 0x01, 0x63, 0x73,
                                     0x65, 0x71, 0x01, 0x51, 0x97, 0x89, 0xf0, 0x00};
    static const uint8_t chain[3] = {0x30, 0x01, 0x00};
    uint8_t payload[512];
    size_t n;
    rsp_t r;
    fresh(AGENT_CAP_SE | AGENT_CAP_SYMKEY);
    /* section 2: the station's hello with seq 1, exactly as on the wire */
    feed_hex("00 21 a3 62 6f 70 65 68 65 6c 6c 6f 63 73 65 71 01 64 61 72 67 73"
             " a1 65 70 72 6f 74 6f 01 76 5f 1b 6e 00");
    CHECK(board.frames_sent == 1);
    n = sent_payload(0, payload);
    r = parse(payload, n);
    CHECK(r.st == 0 && r.seq == 1);
    CHECK(cbor_text_is(&(cbor_item_t){CBOR_TEXT, 9, (const uint8_t *)"SN-TEST-1"}, "SN-TEST-1"));
    {
        cbor_item_t serial = field(&r, "serial");
        cbor_item_t max = field(&r, "max");
        cbor_item_t locked = field(&r, "locked");
        cbor_item_t proto = field(&r, "proto");
        CHECK(cbor_text_is(&serial, "SN-TEST-1"));
        CHECK(max.major == CBOR_UINT && max.arg == 8192);
        CHECK(locked.major == CBOR_SIMPLE && locked.arg == CBOR_FALSE);
        CHECK(proto.arg == 1);
    }
    /* the answer example {"seq": 1, "st": 0, "res": {"gen": 1}}, byte for byte */
    fresh(AGENT_CAP_SE | AGENT_CAP_SYMKEY);
    {
        cbor_writer_t w;
        uint8_t frame[600];
        size_t len;
        uint32_t crc;
        request(&w, 1, "write", 2);
        cbor_put_cstr(&w, "name");
        cbor_put_cstr(&w, "cert_chain");
        cbor_put_cstr(&w, "data");
        cbor_put_bytes(&w, chain, sizeof chain);
        crc = agent_crc32(w.buf, w.len);
        w.buf[w.len] = (uint8_t)crc;
        w.buf[w.len + 1] = (uint8_t)(crc >> 8);
        w.buf[w.len + 2] = (uint8_t)(crc >> 16);
        w.buf[w.len + 3] = (uint8_t)(crc >> 24);
        frame[0] = 0;
        len = agent_cobs_encode(w.buf, w.len + 4, frame + 1, sizeof frame - 2);
        frame[len + 1] = 0;
        agent_feed(&agent, frame, len + 2);
        CHECK(board.sent_len == sizeof answer && memcmp(board.sent, answer, sizeof answer) == 0);
    }
}

static void test_frame_faults(void)
{
    uint8_t payload[512];
    rsp_t r;
    size_t n;
    fresh(AGENT_CAP_SE);
    /* oversized: more than 8229 bytes without a delimiter, then a good frame */
    memset(big, 0x41, sizeof big);
    agent_feed(&agent, big, sizeof big);
    CHECK(board.frames_sent == 0);
    agent_feed(&agent, (const uint8_t *)"\0", 1);
    CHECK(board.frames_sent == 1);
    n = sent_payload(0, payload);
    r = parse(payload, n);
    CHECK(r.st == AGENT_ST_TOO_LARGE && r.seq == 0 && strcmp(r.msg, "oversized") == 0);
    CHECK(agent_stats(&agent)->oversize == 1);
    /* a frame of exactly the maximum is stored (and fails its CRC, not the size check) */
    agent_feed(&agent, big, AGENT_MAX_ENCODED);
    agent_feed(&agent, (const uint8_t *)"\0", 1);
    n = sent_payload(1, payload);
    r = parse(payload, n);
    CHECK(r.st == AGENT_ST_MALFORMED && strcmp(r.msg, "bad_cobs") == 0);
    /* noise, then a wrong CRC, then too short */
    feed_hex("06 11 22 33 44 55 00");
    n = sent_payload(2, payload);
    r = parse(payload, n);
    CHECK(r.st == AGENT_ST_MALFORMED && strcmp(r.msg, "bad_crc") == 0);
    feed_hex("02 11 00");
    n = sent_payload(3, payload);
    r = parse(payload, n);
    CHECK(r.st == AGENT_ST_MALFORMED && strcmp(r.msg, "too_short") == 0);
    /* empty frames are ignored; resynchronisation: the next good frame is answered */
    feed_hex("00 00 00");
    CHECK(board.frames_sent == 4);
    feed_hex("de ad 00 21 a3 62 6f 70 65 68 65 6c 6c 6f 63 73 65 71 01 64 61 72 67 73"
             " a1 65 70 72 6f 74 6f 01 76 5f 1b 6e 00");
    CHECK(board.frames_sent == 6); /* a NAK for "de ad", then the hello's answer */
    n = sent_payload(5, payload);
    r = parse(payload, n);
    CHECK(r.st == 0 && r.seq == 1);
    /* a good frame whose payload, a readable request, is longer than 8192 bytes: too_large,
     * and nothing is stored (the replay copy holds at most 8192 bytes) */
    {
        static uint8_t zeros[AGENT_MAX_PAYLOAD];
        static uint8_t wire[AGENT_MAX_ENCODED + 64];
        cbor_writer_t w;
        size_t len;
        uint32_t crc;
        size_t before = board.frames_sent;
        size_t stored = agent.last_req_len;
        request(&w, 9, "hello", 1);
        cbor_put_cstr(&w, "proto");
        cbor_put_bytes(&w, zeros, AGENT_MAX_PAYLOAD + 4 - w.len - 3); /* head 59 xx xx */
        CHECK(w.len == AGENT_MAX_PAYLOAD + 4);
        crc = agent_crc32(w.buf, w.len);
        w.buf[w.len] = (uint8_t)crc;
        w.buf[w.len + 1] = (uint8_t)(crc >> 8);
        w.buf[w.len + 2] = (uint8_t)(crc >> 16);
        w.buf[w.len + 3] = (uint8_t)(crc >> 24);
        len = agent_cobs_encode(w.buf, w.len + 4, wire, sizeof wire);
        CHECK(len > 0 && len <= AGENT_MAX_ENCODED);
        wire[len] = 0;
        agent_feed(&agent, wire, len + 1);
        CHECK(board.frames_sent == before + 1);
        n = sent_payload(before, payload);
        r = parse(payload, n);
        CHECK(r.st == AGENT_ST_TOO_LARGE && r.seq == 0);
        CHECK(agent.last_req_len == stored);
    }
}

/* ------------------------------------------------------------------ message layer */

static void check_malformed(const uint8_t *payload, size_t len, int line)
{
    rsp_t r = send_raw(payload, len);
    if (!(r.st == AGENT_ST_MALFORMED && r.seq == 0)) {
        fprintf(stderr, "test_core.c:%d: expected malformed, got st %lu seq %lu\n", line,
                (unsigned long)r.st, (unsigned long)r.seq);
        failures++;
    }
    checks++;
}

#define MALFORMED(...)                                                                         \
    do {                                                                                       \
        static const uint8_t p_[] = {__VA_ARGS__};                                             \
        check_malformed(p_, sizeof p_, __LINE__);                                              \
    } while (0)

/* {"seq": 1, "op": "hello", "args": {"proto": X}} with X given as raw bytes */
#define HELLO_WITH(...)                                                                        \
    MALFORMED(0xa3, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x65, 'h', 'e', 'l', 'l', 'o', \
              0x64, 'a', 'r', 'g', 's', 0xa1, 0x65, 'p', 'r', 'o', 't', 'o', __VA_ARGS__)

static void test_malformed(void)
{
    cbor_writer_t w;
    size_t i;
    rsp_t r;
    fresh(AGENT_CAP_SE);
    MALFORMED(0x01);                                        /* not a map */
    MALFORMED(0xa1, 0x63, 's', 'e', 'q');                  /* truncated */
    MALFORMED(0xbf, 0x63, 's', 'e', 'q', 0x01, 0xff);       /* indefinite length */
    MALFORMED(0xa1, 0x63, 's', 'e', 'q', 0x00);             /* seq 0 */
    MALFORMED(0xa1, 0x63, 's', 'e', 'q', 0xf5);             /* seq true */
    MALFORMED(0xa2, 0x63, 's', 'e', 'q', 0x1b, 0, 0, 0, 1, 0, 0, 0, 0, 0x62, 'o', 'p', 0x61,
              'x'); /* seq beyond 32 bits */
    MALFORMED(0xa2, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x60); /* empty op */
    MALFORMED(0xa1, 0x62, 'o', 'p', 0x61, 'x');                        /* no seq */
    MALFORMED(0xa3, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x61, 'x', 0x61, 'z',
              0x00); /* unknown top-level key */
    MALFORMED(0xa3, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x61, 'x', 0x64, 'a', 'r', 'g',
              's', 0x80); /* args not a map */
    MALFORMED(0xa2, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x61, 'x', 0x00); /* trailing */
    HELLO_WITH(0xc1, 0x00);                   /* a tag */
    HELLO_WITH(0xf9, 0x3c, 0x00);             /* a float */
    HELLO_WITH(0xf7);                         /* undefined */
    HELLO_WITH(0xe0);                         /* simple(0) */
    HELLO_WITH(0x62, 0xc3, 0x28);             /* text that is not UTF-8 */
    HELLO_WITH(0x63, 0xed, 0xa0, 0x80);       /* a UTF-16 surrogate */
    HELLO_WITH(0xa1, 0x01, 0x02);             /* a map key that is not text */
    HELLO_WITH(0x5f, 0x41, 0x00, 0xff);       /* indefinite byte string */
    HELLO_WITH(0x1c);                         /* reserved additional information */
    /* depth: the args map is level 1, proto level 2; 5 arrays more reach level 7 */
    HELLO_WITH(0x81, 0x81, 0x81, 0x81, 0x81, 0x00);
    {
        static const uint8_t depth6[] = {0xa3, 0x63, 's', 'e', 'q', 0x01, 0x62, 'o', 'p', 0x65,
                                         'h', 'e', 'l', 'l', 'o', 0x64, 'a', 'r', 'g', 's',
                                         0xa1, 0x65, 'p', 'r', 'o', 't', 'o', 0x81, 0x81,
                                         0x81, 0x81, 0x80};
        r = send_raw(depth6, sizeof depth6);
        CHECK(r.st == AGENT_ST_BAD_ARGS && r.seq == 1); /* readable; proto is not an int */
    }
    /* items: 64 in an array are fine, 65 are not */
    for (i = 64; i <= 65; i++) {
        size_t k;
        request(&w, 2, "hello", 1);
        cbor_put_cstr(&w, "proto");
        cbor_put_head(&w, CBOR_ARRAY, i);
        for (k = 0; k < i; k++) {
            cbor_put_uint(&w, k);
        }
        r = send(&w);
        CHECK(i == 64 ? (r.st == AGENT_ST_BAD_ARGS && r.seq == 2)
                      : (r.st == AGENT_ST_MALFORMED && r.seq == 0));
    }
    /* at most 2048 items in a message, keys and container heads included: 9 items around
     * `proto`, 31 arrays of 64 (65 items each) and one array of 23 or 24 make 2048 or 2049 */
    for (i = 23; i <= 24; i++) {
        size_t a;
        size_t k;
        request(&w, 3, "hello", 1);
        cbor_put_cstr(&w, "proto");
        cbor_put_head(&w, CBOR_ARRAY, 32);
        for (a = 0; a < 32; a++) {
            size_t n = a < 31 ? 64 : i;
            cbor_put_head(&w, CBOR_ARRAY, n);
            for (k = 0; k < n; k++) {
                cbor_put_uint(&w, 0);
            }
        }
        r = send(&w);
        CHECK(i == 23 ? (r.st == AGENT_ST_BAD_ARGS && r.seq == 3)
                      : (r.st == AGENT_ST_MALFORMED && r.seq == 0));
    }
    /* a malformed request does not replace the replay copy */
    r = simple(7, "lock");
    CHECK(r.st == 0);
    MALFORMED(0x01);
    r = simple(7, "lock");
    CHECK(r.st == 0 && agent_stats(&agent)->replayed == 1);
}

static void test_arguments(void)
{
    cbor_writer_t w;
    rsp_t r;
    fresh(AGENT_CAP_SE | AGENT_CAP_SYMKEY);
    r = simple(3, "format");
    CHECK(r.st == AGENT_ST_UNKNOWN_OP && r.seq == 3);
    request(&w, 4, "lock", 1);
    cbor_put_cstr(&w, "now");
    cbor_put_bool(&w, 1);
    r = send(&w);
    CHECK(r.st == AGENT_ST_BAD_ARGS && r.seq == 4);
    request(&w, 5, "read", 1);
    cbor_put_cstr(&w, "name");
    cbor_put_uint(&w, 1);
    r = send(&w);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    r = simple(6, "read");
    CHECK(r.st == AGENT_ST_BAD_ARGS && strstr(r.msg, "name") != NULL);
    request(&w, 7, "keygen", 1);
    cbor_put_cstr(&w, "key");
    cbor_put_cstr(&w, "abcdefghijklmnopqrstuvwxyz0123456"); /* 33 characters */
    r = send(&w);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    request(&w, 8, "keygen", 1);
    cbor_put_cstr(&w, "key");
    /* 32 characters in 64 bytes: within the limit, which counts characters */
    cbor_put_cstr(&w, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    r = send(&w);
    CHECK(r.st == AGENT_ST_NOT_FOUND);
    request(&w, 9, "reset", 1);
    cbor_put_cstr(&w, "factory");
    cbor_put_head(&w, CBOR_SIMPLE, CBOR_NULL);
    r = send(&w);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    request(&w, 10, "hello", 1);
    cbor_put_cstr(&w, "proto");
    cbor_put_head(&w, CBOR_NINT, 0); /* -1: an integer, as the Python board accepts */
    r = send(&w);
    CHECK(r.st == 0);
}

/* ------------------------------------------------------------------ operations */

static void test_objects_replay_and_lock(void)
{
    static const uint8_t key16[16] = "0123456789abcdef";
    static const uint8_t dps[] = {0xa3, 0x68, 'e', 'n', 'd', 'p', 'o', 'i', 'n', 't', 0x61, 'e',
                                  0x65, 's', 'c', 'o', 'p', 'e', 0x61, 's', 0x63, 'r', 'i',
                                  'd', 0x61, 'r'};
    static const uint8_t dps_no_rid[] = {0xa2, 0x68, 'e', 'n', 'd', 'p', 'o', 'i', 'n', 't', 0x61,
                                         'e', 0x65, 's', 'c', 'o', 'p', 'e', 0x61, 's'};
    uint8_t digest[32];
    rsp_t r;
    cbor_item_t item;
    fresh(AGENT_CAP_SE | AGENT_CAP_SYMKEY);
    r = read_object(1, "cert_chain");
    CHECK(r.st == AGENT_ST_NOT_FOUND);
    r = read_object(2, "hub");
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    r = write_object(3, "symkey", key16, 16);
    CHECK(r.st == 0 && field(&r, "gen").arg == 1);
    /* a retry (same bytes) is replayed, not applied again */
    r = write_object(3, "symkey", key16, 16);
    CHECK(r.st == 0 && field(&r, "gen").arg == 1 && agent_stats(&agent)->replayed == 1);
    r = write_object(4, "symkey", key16, 16);
    CHECK(r.st == 0 && field(&r, "gen").arg == 2);
    r = read_object(5, "symkey");
    item = field(&r, "sha256");
    CHECK(r.st == 0 && field(&r, "gen").arg == 2 && field(&r, "data").major == -1);
    CHECK(agent_psa_sha256(NULL, key16, 16, digest) == 0 && item.arg == 32 &&
          memcmp(item.data, digest, 32) == 0);
    r = write_object(6, "symkey", key16, 15);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    memset(big, 7, 6145);
    r = write_object(7, "symkey", big, 65);
    CHECK(r.st == AGENT_ST_TOO_LARGE);
    r = write_object(8, "cert_chain", big, 6145);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    r = write_object(9, "cert_chain", big, 6144);
    CHECK(r.st == 0);
    r = read_object(10, "cert_chain");
    item = field(&r, "data");
    CHECK(r.st == 0 && item.arg == 6144 && memcmp(item.data, big, 6144) == 0);
    r = write_object(11, "privkey", PKCS8_P256, sizeof PKCS8_P256);
    CHECK(r.st == AGENT_ST_UNSUPPORTED);
    r = write_object(12, "dps", dps, sizeof dps);
    CHECK(r.st == 0);
    r = write_object(13, "dps", dps_no_rid, sizeof dps_no_rid);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    r = write_object(14, "dps", key16, 16);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    r = write_object(15, "firmware", key16, 16);
    CHECK(r.st == AGENT_ST_BAD_ARGS);
    /* reset: the answer goes out first, then the port's reset runs */
    feed_hex("00"); /* nothing */
    r = simple(16, "reset");
    CHECK(r.st == 0);
    /* lock */
    r = simple(17, "lock");
    CHECK(r.st == 0 && field(&r, "locked").arg == CBOR_TRUE);
    r = simple(18, "lock");
    CHECK(r.st == 0);
    r = write_object(19, "dps", dps, sizeof dps);
    CHECK(r.st == AGENT_ST_LOCKED);
    r = simple(20, "keygen");
    CHECK(r.st == AGENT_ST_LOCKED);
    r = read_object(21, "dps");
    CHECK(r.st == 0);
    {
        cbor_writer_t w;
        request(&w, 22, "reset", 1);
        cbor_put_cstr(&w, "factory");
        cbor_put_bool(&w, 1);
        r = send(&w);
        CHECK(r.st == AGENT_ST_LOCKED);
    }
    r = simple(23, "reset");
    CHECK(r.st == 0);
    /* the lock survives a power cycle */
    agent_init(&agent, &board.hal);
    r = simple(24, "hello");
    CHECK(field(&r, "locked").arg == CBOR_TRUE);
}

static void test_factory_reset(void)
{
    static const uint8_t chain[3] = {0x30, 0x01, 0x00};
    cbor_writer_t w;
    rsp_t r;
    fresh(AGENT_CAP_SE | AGENT_CAP_SYMKEY);
    CHECK(write_object(1, "cert_chain", chain, 3).st == 0);
    CHECK(simple(2, "keygen").st == 0);
    request(&w, 3, "reset", 1);
    cbor_put_cstr(&w, "factory");
    cbor_put_bool(&w, 1);
    r = send(&w);
    CHECK(r.st == 0);
    CHECK(read_object(4, "cert_chain").st == AGENT_ST_NOT_FOUND);
    r = simple(5, "keygen");
    CHECK(r.st == 0 && field(&r, "pub").arg == 91); /* no key any more, so no `exists` */
    CHECK(write_object(6, "cert_chain", chain, 3).st == 0);
    r = read_object(7, "cert_chain");
    CHECK(field(&r, "gen").arg == 1); /* generations were erased too */
}

static void test_keys(void)
{
    cbor_writer_t w;
    rsp_t r;
    cbor_item_t pub;
    uint8_t first[91];
    static const uint8_t nonce[8] = "abcdefgh";
    fresh(AGENT_CAP_SE);
    request(&w, 1, "csr", 1);
    cbor_put_cstr(&w, "cn");
    cbor_put_cstr(&w, "dev-1");
    CHECK(send(&w).st == AGENT_ST_NOT_FOUND);
    r = simple(2, "keygen");
    pub = field(&r, "pub");
    CHECK(r.st == 0 && pub.arg == 91 && pub.data[0] == 0x30 && pub.data[1] == 0x59);
    memcpy(first, pub.data, 91);
    CHECK(simple(3, "keygen").st == AGENT_ST_EXISTS);
    request(&w, 4, "keygen", 1);
    cbor_put_cstr(&w, "replace");
    cbor_put_bool(&w, 1);
    r = send(&w);
    pub = field(&r, "pub");
    CHECK(r.st == 0 && pub.arg == 91 && memcmp(first, pub.data, 91) != 0);
    request(&w, 5, "csr", 1);
    cbor_put_cstr(&w, "cn");
    cbor_put_cstr(&w, "dev-1");
    r = send(&w);
    pub = field(&r, "csr");
    CHECK(r.st == 0 && pub.arg > 200 && pub.data[0] == 0x30);
    request(&w, 6, "csr", 1);
    cbor_put_cstr(&w, "cn");
    cbor_put_cstr(&w, "");
    CHECK(send(&w).st == AGENT_ST_BAD_ARGS);
    request(&w, 7, "sign", 2);
    cbor_put_cstr(&w, "key");
    cbor_put_cstr(&w, "other");
    cbor_put_cstr(&w, "nonce");
    cbor_put_bytes(&w, nonce, 8);
    CHECK(send(&w).st == AGENT_ST_NOT_FOUND);
    request(&w, 8, "sign", 1);
    cbor_put_cstr(&w, "nonce");
    cbor_put_bytes(&w, nonce, 8);
    r = send(&w);
    pub = field(&r, "sig");
    CHECK(r.st == 0 && pub.arg >= 8 && pub.arg <= 72 && pub.data[0] == 0x30);
    request(&w, 9, "tpm", 1);
    cbor_put_cstr(&w, "cmd");
    cbor_put_bytes(&w, nonce, 8);
    CHECK(send(&w).st == AGENT_ST_UNSUPPORTED);
}

/* keygen with "curve": the P-384 operational key next to the P-256 device key. */
static rsp_t keygen_slot(uint64_t seq, const char *slot, const char *curve, int replace)
{
    cbor_writer_t w;
    request(&w, seq, "keygen", 1u + (curve != NULL) + (replace != 0));
    cbor_put_cstr(&w, "key");
    cbor_put_cstr(&w, slot);
    if (curve != NULL) {
        cbor_put_cstr(&w, "curve");
        cbor_put_cstr(&w, curve);
    }
    if (replace) {
        cbor_put_cstr(&w, "replace");
        cbor_put_bool(&w, 1);
    }
    return send(&w);
}

static rsp_t slot_op(uint64_t seq, const char *op, const char *slot)
{
    static const uint8_t nonce[8] = "abcdefgh";
    cbor_writer_t w;
    request(&w, seq, op, 2);
    cbor_put_cstr(&w, "key");
    cbor_put_cstr(&w, slot);
    if (strcmp(op, "csr") == 0) {
        cbor_put_cstr(&w, "cn");
        cbor_put_cstr(&w, "opc-0001");
    } else {
        cbor_put_cstr(&w, "nonce");
        cbor_put_bytes(&w, nonce, sizeof nonce);
    }
    return send(&w);
}

static int contains(const uint8_t *data, size_t len, const uint8_t *needle, size_t n)
{
    size_t i;
    for (i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void test_operational_key(void)
{
    static const uint8_t ecdsa_sha384[10] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                             0xCE, 0x3D, 0x04, 0x03, 0x03};
    static const uint8_t secp384r1[7] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};
    uint8_t first[120];
    cbor_writer_t w;
    cbor_item_t item;
    rsp_t r;
    fresh(AGENT_CAP_SE);
    CHECK(slot_op(1, "csr", "operational").st == AGENT_ST_NOT_FOUND);
    r = keygen_slot(2, "operational", "p384", 0);
    item = field(&r, "pub");
    CHECK(r.st == 0 && item.arg == 120 && item.data[0] == 0x30 && item.data[1] == 0x76);
    CHECK(item.arg == 120 && contains(item.data, 120, secp384r1, sizeof secp384r1));
    memcpy(first, item.data, item.arg == 120 ? 120 : 0);
    /* the slot's curve is the default; a key exists until replaced */
    CHECK(keygen_slot(3, "operational", NULL, 0).st == AGENT_ST_EXISTS);
    r = keygen_slot(4, "operational", NULL, 1);
    item = field(&r, "pub");
    CHECK(r.st == 0 && item.arg == 120 && memcmp(first, item.data, 120) != 0);
    /* each slot has its own curve and key: the device key is untouched */
    CHECK(keygen_slot(5, "operational", "p256", 1).st == AGENT_ST_UNSUPPORTED);
    CHECK(keygen_slot(6, "device", "p384", 1).st == AGENT_ST_UNSUPPORTED);
    CHECK(keygen_slot(7, "device", "p521", 1).st == AGENT_ST_UNSUPPORTED);
    CHECK(slot_op(8, "csr", "device").st == AGENT_ST_NOT_FOUND);
    r = slot_op(9, "csr", "operational");
    item = field(&r, "csr");
    CHECK(r.st == 0 && item.arg > 250 && item.data[0] == 0x30);
    CHECK(r.st == 0 && contains(item.data, (size_t)item.arg, ecdsa_sha384, sizeof ecdsa_sha384));
    CHECK(r.st == 0 && contains(item.data, (size_t)item.arg, (const uint8_t *)"opc-0001", 8));
    r = slot_op(10, "sign", "operational");
    item = field(&r, "sig");
    CHECK(r.st == 0 && item.arg > 72 && item.arg <= 104 && item.data[0] == 0x30);
    /* a factory reset forgets the operational key too; a locked board makes no new one */
    CHECK(simple(11, "reset").st == 0);
    request(&w, 12, "reset", 1);
    cbor_put_cstr(&w, "factory");
    cbor_put_bool(&w, 1);
    CHECK(send(&w).st == 0);
    CHECK(slot_op(13, "csr", "operational").st == AGENT_ST_NOT_FOUND);
    CHECK(keygen_slot(14, "operational", "p384", 0).st == 0);
    CHECK(simple(15, "lock").st == 0);
    CHECK(keygen_slot(16, "operational", "p384", 1).st == AGENT_ST_LOCKED);
    CHECK(slot_op(17, "csr", "operational").st == 0); /* renewal CSRs work when locked */
    /* a secure element without P-384 (HAL members NULL) and a board without one */
    fresh(AGENT_CAP_SE);
    board.hal.op_key_generate = NULL;
    r = keygen_slot(18, "operational", "p384", 0);
    CHECK(r.st == AGENT_ST_UNSUPPORTED && strstr(r.msg, "p384") != NULL);
    fresh(AGENT_CAP_PRIVKEY);
    CHECK(keygen_slot(19, "operational", "p384", 0).st == AGENT_ST_UNSUPPORTED);
    CHECK(slot_op(20, "csr", "operational").st == AGENT_ST_NOT_FOUND);
    (void)agent_psa_op_key_destroy(NULL);
}

static void test_injected_key(void)
{
    static const uint8_t nonce[4] = "abcd";
    cbor_writer_t w;
    rsp_t r;
    uint8_t broken[sizeof PKCS8_P256];
    fresh(AGENT_CAP_PRIVKEY | AGENT_CAP_SYMKEY);
    CHECK(simple(1, "keygen").st == AGENT_ST_UNSUPPORTED);
    request(&w, 2, "sign", 1);
    cbor_put_cstr(&w, "nonce");
    cbor_put_bytes(&w, nonce, 4);
    CHECK(send(&w).st == AGENT_ST_NOT_FOUND);
    CHECK(write_object(3, "privkey", PKCS8_P384, sizeof PKCS8_P384).st == AGENT_ST_BAD_ARGS);
    memcpy(broken, PKCS8_P256, sizeof broken);
    broken[1] ^= 1;
    CHECK(write_object(4, "privkey", broken, sizeof broken).st == AGENT_ST_BAD_ARGS);
    r = write_object(5, "privkey", PKCS8_P256, sizeof PKCS8_P256);
    CHECK(r.st == 0 && field(&r, "gen").arg == 1);
    request(&w, 6, "sign", 1);
    cbor_put_cstr(&w, "nonce");
    cbor_put_bytes(&w, nonce, 4);
    r = send(&w);
    CHECK(r.st == 0 && field(&r, "sig").major == CBOR_BYTES);
    r = read_object(7, "privkey");
    CHECK(r.st == 0 && field(&r, "sha256").arg == 32 && field(&r, "data").major == -1);
}

static void test_tpm(void)
{
    static const uint8_t get_random[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8};
    cbor_writer_t w;
    rsp_t r;
    cbor_item_t rsp;
    fresh(AGENT_CAP_TPM | AGENT_CAP_SYMKEY);
    request(&w, 1, "tpm", 1);
    cbor_put_cstr(&w, "cmd");
    cbor_put_bytes(&w, get_random, sizeof get_random);
    r = send(&w);
    rsp = field(&r, "rsp");
    CHECK(r.st == 0 && rsp.arg == 14 && memcmp(rsp.data + 10, get_random + 6, 4) == 0);
    request(&w, 2, "tpm", 1);
    cbor_put_cstr(&w, "cmd");
    cbor_put_bytes(&w, get_random, 11);
    CHECK(send(&w).st == AGENT_ST_BAD_ARGS);
    request(&w, 3, "tpm", 1);
    cbor_put_cstr(&w, "cmd");
    cbor_put_bytes(&w, get_random, 9);
    CHECK(send(&w).st == AGENT_ST_BAD_ARGS);
    memset(big, 0, 4097);
    request(&w, 4, "tpm", 1);
    cbor_put_cstr(&w, "cmd");
    cbor_put_bytes(&w, big, 4097);
    CHECK(send(&w).st == AGENT_ST_BAD_ARGS);
    CHECK(simple(5, "keygen").st == AGENT_ST_UNSUPPORTED);
}

static void test_reset_hook(void)
{
    cbor_writer_t w;
    uint8_t frame[128];
    size_t len;
    uint32_t crc;
    fresh(AGENT_CAP_SE);
    request(&w, 1, "reset", 0);
    crc = agent_crc32(w.buf, w.len);
    w.buf[w.len] = (uint8_t)crc;
    w.buf[w.len + 1] = (uint8_t)(crc >> 8);
    w.buf[w.len + 2] = (uint8_t)(crc >> 16);
    w.buf[w.len + 3] = (uint8_t)(crc >> 24);
    len = agent_cobs_encode(w.buf, w.len + 4, frame, sizeof frame - 1);
    frame[len] = 0;
    agent_feed(&agent, frame, len + 1);
    CHECK(board.frames_sent == 1 && board.resets == 1);
    agent_feed(&agent, frame, len + 1); /* a retry: replayed, no second reset */
    CHECK(board.frames_sent == 2 && board.resets == 1);
}

int main(void)
{
    test_crc_and_cobs();
    test_spec_examples();
    test_frame_faults();
    test_malformed();
    test_arguments();
    test_objects_replay_and_lock();
    test_factory_reset();
    test_keys();
    test_operational_key();
    test_injected_key();
    test_tpm();
    test_reset_hook();
    (void)agent_psa_key_destroy(NULL);
    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
