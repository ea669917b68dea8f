/* SPDX-License-Identifier: MIT */
/*
 * list.h - circular doubly-linked intrusive list with a sentinel.
 * An unlinked node points to itself, so unlinking twice is harmless and
 * "is it linked" is O(1). No list owns memory.
 */
#ifndef LR_LIST_H
#define LR_LIST_H

#include <stddef.h>
#include <leasering/common.h>

#define lr_container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

static inline void lr_list_init(struct lr_list *n)
{
    n->next = n;
    n->prev = n;
}

static inline int lr_list_is_linked(const struct lr_list *n)
{
    return n->next != n;
}

#define lr_list_is_empty(head) (!lr_list_is_linked(head))

static inline void lr_list_unlink(struct lr_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    lr_list_init(n);
}

/* Insert @n before @head, i.e. at the tail of the list headed by @head. */
static inline void lr_list_push_tail(struct lr_list *head, struct lr_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline struct lr_list *lr_list_first(const struct lr_list *head)
{
    return head->next == head ? NULL : head->next;
}

/* Unlink and return the first node, or NULL if the list is empty. */
static inline struct lr_list *lr_list_pop(struct lr_list *head)
{
    struct lr_list *n = lr_list_first(head);
    if (n)
        lr_list_unlink(n);
    return n;
}

/* Move every node of @from to the tail of @to; @from becomes empty. */
static inline void lr_list_splice_tail(struct lr_list *to, struct lr_list *from)
{
    if (lr_list_is_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    lr_list_init(from);
}

#endif
