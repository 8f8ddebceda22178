// SPDX-License-Identifier: GPL-2.0
/*
 * The syscall sensor: raw_syscalls sys_enter (and sys_exit on request),
 * filtered in the probe by a bitmap of native x86-64 system call numbers
 * and by the excluded processes. The sys_enter probe is shared with the
 * mem sensor's W^X check (mmap, mprotect, pkey_mprotect): sn_interest is
 * the union of both, so that a call nobody wants costs one bit test.
 * Compat (ia32) system calls are not reported: their numbers differ.
 */
#include <linux/compat.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <asm/syscall.h>
#include "sensors.h"

unsigned long sn_sys_bits[BITS_TO_LONGS(SN_NBITS)];
unsigned long sn_interest[BITS_TO_LONGS(SN_NBITS)];

/* Every field, no memset: the record may be this CPU's batch slot. */
static void sn_syscall_fill(struct archangel_sensor_syscall *rec,
			    struct pt_regs *regs, long nr, bool exit, long ret)
{
	unsigned long args[6];
	int i;

	sn_fill_task(&rec->ev, ARCHANGEL_SENSOR_SYSCALL, current);
	rec->nr = nr;
	rec->pad = 0;
	if (exit) {
		rec->ev.flags = ARCHANGEL_SYSCALL_F_EXIT;
		for (i = 0; i < 6; i++)
			rec->args[i] = 0;
		rec->ret = ret;
	} else {
		syscall_get_arguments(current, regs, args);
		for (i = 0; i < 6; i++)
			rec->args[i] = args[i];
		rec->ret = 0;
	}
}

/* Built in place in this CPU's batch, or on the stack and sent alone. */
static void sn_syscall_event(struct pt_regs *regs, long nr, bool exit,
			     long ret)
{
	struct archangel_sensor_syscall local, *rec;
	struct sn_stage *st;
	unsigned long flags;

	rec = sn_stage_begin(ARCHANGEL_MSG_SYSCALL_EVENT, sizeof(*rec), &st,
			     &flags);
	if (rec) {
		sn_syscall_fill(rec, regs, nr, exit, ret);
		sn_stage_end(st, ARCHANGEL_SENSOR_SYSCALL, sizeof(*rec),
			     rec->ev.timestamp, flags);
		return;
	}
	sn_syscall_fill(&local, regs, nr, exit, ret);
	sn_emit(ARCHANGEL_SENSOR_SYSCALL, ARCHANGEL_MSG_SYSCALL_EVENT,
		ARCHANGEL_PRIORITY_NORMAL, 0, &local, sizeof(local));
}

void sn_sys_enter_probe(void *data, struct pt_regs *regs, long id)
{
	unsigned long nr = id;

	if (nr >= SN_NBITS || !test_bit(nr, sn_interest))
		return;
	if (in_compat_syscall() || sn_excluded(current->tgid))
		return;
	if (test_bit(nr, sn_sys_bits))
		sn_syscall_event(regs, id, false, 0);
	if (READ_ONCE(sn_wx_on) && sn_mem_is_wx_nr(nr))
		sn_mem_wx(regs, id);
}

void sn_sys_exit_probe(void *data, struct pt_regs *regs, long ret)
{
	long id = syscall_get_nr(current, regs);
	unsigned long nr = id;

	if (nr >= SN_NBITS || !test_bit(nr, sn_sys_bits))
		return;
	if (in_compat_syscall() || sn_excluded(current->tgid))
		return;
	sn_syscall_event(regs, id, true, ret);
}

/* The syscall sensor's numbers (NULL: none). */
void sn_syscall_set_bits(const u64 *bits)
{
	unsigned int i;

	lockdep_assert_held(&sn_cfg_mutex);
	for (i = 0; i < SN_NBITS; i++) {
		if (bits && (bits[i / 64] >> (i % 64)) & 1)
			set_bit(i, sn_sys_bits);
		else
			clear_bit(i, sn_sys_bits);
	}
}

/* sn_interest = sn_sys_bits | the W^X numbers while the check runs. */
void sn_syscall_update_interest(void)
{
	unsigned int i;

	lockdep_assert_held(&sn_cfg_mutex);
	for (i = 0; i < SN_NBITS; i++) {
		if (test_bit(i, sn_sys_bits) ||
		    (READ_ONCE(sn_wx_on) && sn_mem_is_wx_nr(i)))
			set_bit(i, sn_interest);
		else
			clear_bit(i, sn_interest);
	}
}
