// SPDX-License-Identifier: GPL-2.0
/*
 * t_seed_example: the seed's usage example, built as seed_example.ko against
 * the installed header and Module.symvers, sends an AI_REQUEST on channel 0
 * at load. With channel 0 created and attached here, loading it must deliver
 * that message (and count it in /proc). Skips (77) when the module file is
 * not in the guest. Looked for in $ARCHANGEL_SEED_EXAMPLE, next to this
 * program, and a few fixed places.
 */
#include "t_common.h"
#include <libgen.h>
#include <sys/syscall.h>

static const char *find_module(const char *argv0, char *path, size_t n)
{
	static const char *const fixed[] = {
		"/seed_example.ko", "/modules/seed_example.ko", "/lib/modules/seed_example.ko",
		"kernel/examples/seed_example.ko", "../examples/seed_example.ko",
	};
	const char *env = getenv("ARCHANGEL_SEED_EXAMPLE");
	char copy[4096];
	size_t i;

	if (env && !access(env, R_OK))
		return env;
	snprintf(copy, sizeof(copy), "%s", argv0);
	snprintf(path, n, "%s/seed_example.ko", dirname(copy));
	if (!access(path, R_OK))
		return path;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!access(fixed[i], R_OK))
			return fixed[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct archangel_create_req req = { .channel_id = 0, .flags = ARCHANGEL_CREATE_ATTACH };
	char where[4096];
	const char *ko;
	struct au_channel ch;
	struct au_msg m;
	long long sent0;
	int fd, mfd, err, created = 0, got = 0;
	__u64 deadline;

	(void)argc;
	t_init("t_seed_example");
	ko = find_module(argv[0], where, sizeof(where));
	if (!ko)
		T_SKIPF("seed_example.ko not in the guest");

	fd = au_open();
	CHECK(fd >= 0, "open");
	err = au_create(fd, &req);
	if (!err) {
		created = 1;
		err = au_attach(&ch, fd, 0, 1);
	} else if (err == -EEXIST) {
		err = au_attach(&ch, fd, 0, 1);
	}
	CHECK(!err, "channel 0: %s", strerror(-err));
	sent0 = t_proc(0, "to_user", "messages_sent");

	mfd = open(ko, O_RDONLY | O_CLOEXEC);
	CHECK(mfd >= 0, "open %s", ko);
	if (syscall(SYS_finit_module, mfd, "", 0))
		T_FAILF("finit_module(%s): %s", ko, strerror(errno));
	close(mfd);
	T_LOG("loaded %s", ko);

	for (deadline = au_now_ns() + 3000000000ULL; au_now_ns() < deadline;) {
		int r = au_recv(&ch, &m);

		CHECK(r >= 0, "receive: %s", strerror(-r));
		if (r) {
			T_LOG("seed example sent type %u priority %u, %u bytes", m.hdr.type, m.hdr.priority, m.length);
			if (m.hdr.type == ARCHANGEL_MSG_AI_REQUEST && m.hdr.priority == ARCHANGEL_PRIORITY_HIGH)
				got++;
			EXPECT_OK(au_recv_done(&ch, &m));
			continue;
		}
		if (got)
			break;
		au_wait_data(&ch, 100);
	}
	CHECK(got, "no AI_REQUEST of priority HIGH from the seed example on channel 0");
	CHECK(t_proc(0, "to_user", "messages_sent") > sent0, "/proc did not count the seed example's message");

	if (syscall(SYS_delete_module, "seed_example", O_NONBLOCK))
		T_LOG("delete_module(seed_example): %s", strerror(errno));
	if (created)
		EXPECT_OK(au_destroy(ch.fd, 0));
	au_detach(&ch, 1);
	return T_PASS;
}
