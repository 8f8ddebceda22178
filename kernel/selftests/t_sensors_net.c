// SPDX-License-Identifier: GPL-2.0
/*
 * t_sensors_net: the net sensor on loopback, allow-and-ask. A child sends
 * UDP datagrams to 127.0.0.1:9999 and [::1]:9997: the first of each flow
 * passes and brings an AI_REQUEST (NET record: direction out, 5-tuple,
 * length); this program answers deny for those two flows and allow for
 * every other, and the child's next sendto() to each gets EPERM (NF_DROP
 * at LOCAL_OUT) while a datagram to port 9998 still goes through.
 */
#include "sensors_user.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Loopback is down in the test VM's initramfs: bring it up. */
static void lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	CHECK(s >= 0, "socket");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(!ioctl(s, SIOCGIFFLAGS, &ifr), "SIOCGIFFLAGS lo: %s", strerror(errno));
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		CHECK(!ioctl(s, SIOCSIFFLAGS, &ifr), "SIOCSIFFLAGS lo: %s", strerror(errno));
		usleep(200000);	/* ::1 is assigned as lo comes up */
	}
	close(s);
}

static int send4(int s, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sendto(s, "hello", 5, 0, (struct sockaddr *)&a, sizeof(a)) == 5 ? 0 : -errno;
}

static int send6(int s, int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	a.sin6_addr = in6addr_loopback;
	return sendto(s, "hello", 5, 0, (struct sockaddr *)&a, sizeof(a)) == 5 ? 0 : -errno;
}

/* The child's steps; its exit status says which failed (0: none). */
static int udp_child(int go_fd, int ready_fd)
{
	int s4 = socket(AF_INET, SOCK_DGRAM, 0), s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	int r;
	char c;

	if (s4 < 0 || s6 < 0)
		return 10;
	r = send4(s4, 9999);
	if (r)
		return fprintf(stderr, "udp child: first v4 sendto: %s\n", strerror(-r)), 11;
	r = send6(s6, 9997);
	if (r)
		return fprintf(stderr, "udp child: first v6 sendto: %s\n", strerror(-r)), 12;
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
		return 13;
	r = send4(s4, 9999);
	if (r != -EPERM)
		return fprintf(stderr, "udp child: denied v4 flow: sendto gave %d\n", r), 14;
	r = send6(s6, 9997);
	if (r != -EPERM)
		return fprintf(stderr, "udp child: denied v6 flow: sendto gave %d\n", r), 15;
	r = send4(s4, 9998);
	if (r)
		return fprintf(stderr, "udp child: other flow: %s\n", strerror(-r)), 16;
	return 0;
}

int main(void)
{
	struct archangel_sensors_stats s0, st;
	const struct archangel_sensors_kind_stats *k = &st.kinds[ARCHANGEL_SENSOR_NET];
	int go[2], ready[2], sfd, denied = 0, status = -1, signalled = 0;
	struct au_channel ch;
	struct su_rec r;
	__u64 deadline;
	pid_t pid;
	char c;

	t_init("t_sensors_net");
	if (access(SU_DEVICE, F_OK))
		T_SKIPF("%s missing", SU_DEVICE);
	lo_up();
	EXPECT_OK(au_channel_new(&ch, NULL));
	sfd = su_open();
	CHECK(sfd >= 0, "open");
	EXPECT_OK(su_attach(sfd, ch.id));
	EXPECT_OK(su_config(sfd, ARCHANGEL_SENSORS_ID_NET, ARCHANGEL_SENSORS_F_ENABLED,
			    ARCHANGEL_POLICY_ALLOW_ASK, ARCHANGEL_VERDICT_ALLOW, 3000, NULL));
	su_stats(sfd, &s0);
	CHECK(!pipe(go) && !pipe(ready), "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid)
		_exit(udp_child(go[0], ready[1]));
	CHECK(read(ready[0], &c, 1) == 1, "child did not get through its first datagrams");

	for (deadline = au_now_ns() + 10000000000ULL; au_now_ns() < deadline && status == -1;) {
		if (su_next(&ch, &r, 50)) {
			const struct archangel_sensor_net *n = (const void *)r.ev;
			int deny;

			if (r.ev->kind != ARCHANGEL_SENSOR_NET)
				continue;
			CHECK(r.ev_len == sizeof(*n) && (n->family == 4 || n->family == 6), "NET record");
			if (r.type != ARCHANGEL_MSG_AI_REQUEST)
				continue;
			deny = n->direction == ARCHANGEL_NET_OUT && n->protocol == IPPROTO_UDP &&
			       n->ev.tgid == (__u32)pid && (n->dport == 9999 || n->dport == 9997);
			if (deny) {
				CHECK(n->ev.flags & ARCHANGEL_NET_F_NEW_FLOW, "flags %#x", n->ev.flags);
				CHECK(n->length == (n->family == 4 ? 20U : 40U) + 8 + 5, "length %u", n->length);
				CHECK(n->family == 4 ? !memcmp(n->daddr, "\x7f\0\0\1", 4) : n->daddr[15] == 1,
				      "daddr");
				T_LOG("request %llu: UDP v%u out to port %u from %u: deny",
				      (unsigned long long)r.req->id, n->family, n->dport, n->sport);
				denied++;
			}
			su_respond(&ch, r.req->id, deny ? ARCHANGEL_VERDICT_DENY : ARCHANGEL_VERDICT_ALLOW, 0);
			continue;
		}
		su_stats(sfd, &st);
		if (denied == 2 && !signalled && st.responses >= s0.responses + 2 && !st.pending) {
			CHECK(write(go[1], "g", 1) == 1, "go");
			signalled = 1;
		}
		if (signalled)
			status = su_reap(pid, 10);
	}
	CHECK(denied == 2, "%d of the 2 flows asked about", denied);
	CHECK(status == 0, "child status %#x", status);
	su_stats(sfd, &st);
	CHECK(st.packets_dropped >= s0.packets_dropped + 2, "packets_dropped %llu",
	      (unsigned long long)st.packets_dropped);
	CHECK(st.flows_new >= s0.flows_new + 3, "flows_new %llu", (unsigned long long)st.flows_new);
	CHECK(k->observed == k->sent + k->dropped, "net: observed %llu sent %llu dropped %llu",
	      (unsigned long long)k->observed, (unsigned long long)k->sent, (unsigned long long)k->dropped);
	T_LOG("denied flows dropped: %llu packets, %llu flows seen", (unsigned long long)st.packets_dropped,
	      (unsigned long long)st.flows_new);
	EXPECT_OK(su_off(sfd, ARCHANGEL_SENSORS_ID_NET));
	close(sfd);
	EXPECT_OK(au_destroy(ch.fd, ch.id));
	au_detach(&ch, 1);
	return T_PASS;
}
