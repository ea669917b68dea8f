/* SPDX-License-Identifier: MIT */
/* mem.h - test controls of the in-memory backend (internal). */
#ifndef LR_BACKEND_MEM_H
#define LR_BACKEND_MEM_H

struct lr_manager;

enum lr__mem_mode {
    LR_MEM_NORMAL = 0, /* answer every request on the next loop pass */
    LR_MEM_STALL,      /* hold requests; each times out after the request timeout */
    LR_MEM_UNAVAIL,    /* refuse requests at once: the store cannot be reached */
    LR_MEM_LOSE_REPLY, /* apply each request, then report -ETIMEDOUT (the reply
                        * was lost: the ambiguous case) */
};

/* Switch @m's mem backend to @mode. Returns 0, or -EINVAL if @m is not mem://. */
int lr__mem_set_mode(struct lr_manager *m, enum lr__mem_mode mode);

#endif
