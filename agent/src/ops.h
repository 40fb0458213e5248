/*
 * ops.h - message layer: decode a request, run its operation, encode the answer.
 */
#ifndef AGENT_OPS_H
#define AGENT_OPS_H

#include "station_agent.h"

/* Answer one request payload into out (cap bytes); returns the answer's length. Sets *stored to
 * 1 when the answer belongs to a readable request (it becomes the replay copy) and 0 for an
 * unreadable one (seq 0). Copies the operation name into agent->current_op. */
size_t ops_answer(agent_t *agent, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                  int *stored);

/* A NAK: {"st": status, "msg": reason, "seq": 0} into out; returns its length. */
size_t ops_nak(int status, const char *reason, uint8_t *out, size_t cap);

#endif /* AGENT_OPS_H */
