// SPDX-License-Identifier: GPL-2.0
/*
 * The net sensor: netfilter LOCAL_IN and LOCAL_OUT, IPv4 and IPv6, on
 * init_net (other network namespaces are not watched). Each packet is
 * mapped to its flow, (local address and port, remote address and port,
 * protocol): the first packet of a flow is reported (every packet with
 * ARCHANGEL_SENSORS_F_NET_ALL) and, by policy, asked about; the flow's
 * state then decides its packets: a denied flow's are NF_DROP. Packets
 * cannot be held in a hook without NFQUEUE: under hold (and deny-and-ask)
 * a flow's packets are dropped until the verdict, and the sender's
 * retransmissions do the waiting (docs/sensors.md).
 *
 * pid and tgid are the current task's when the hook runs in process
 * context (a local sender), else 0; uid is the socket owner's, or
 * 0xffffffff without a full socket.
 */
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include "sensors.h"

struct sn_net_msg {
	struct archangel_sensor_request req;
	struct archangel_sensor_net n;
} __packed;

bool sn_net_all;
static bool sn_net_registered;

static bool sn_has_ports(u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_UDPLITE || proto == IPPROTO_SCTP ||
	       proto == IPPROTO_DCCP;
}

/* Fills @n's addresses, protocol, ports and length; false: not parsable. */
static bool sn_net_parse(const struct sk_buff *skb, u8 pf,
			 struct archangel_sensor_net *n)
{
	int noff = skb_network_offset(skb), thoff = -1;
	__be16 ports[2], *pp;

	if (pf == NFPROTO_IPV4) {
		struct iphdr _ih;
		const struct iphdr *ih;

		ih = skb_header_pointer(skb, noff, sizeof(_ih), &_ih);
		if (!ih || ih->ihl < 5)
			return false;
		n->family = 4;
		n->protocol = ih->protocol;
		memcpy(n->saddr, &ih->saddr, 4);
		memcpy(n->daddr, &ih->daddr, 4);
		if (!(ntohs(ih->frag_off) & IP_OFFSET))
			thoff = noff + ih->ihl * 4;
	} else {
		struct ipv6hdr _ih;
		const struct ipv6hdr *ih;
		__be16 frag = 0;
		u8 nexthdr;

		ih = skb_header_pointer(skb, noff, sizeof(_ih), &_ih);
		if (!ih)
			return false;
		n->family = 6;
		memcpy(n->saddr, &ih->saddr, 16);
		memcpy(n->daddr, &ih->daddr, 16);
		nexthdr = ih->nexthdr;
		thoff = ipv6_skip_exthdr(skb, noff + sizeof(_ih), &nexthdr,
					 &frag);
		n->protocol = nexthdr;
		if (frag & htons(~0x7))
			thoff = -1;	/* not the first fragment */
	}
	n->length = skb->len;
	if (thoff >= 0 && sn_has_ports(n->protocol)) {
		pp = skb_header_pointer(skb, thoff, sizeof(ports), ports);
		if (pp) {
			n->sport = ntohs(pp[0]);
			n->dport = ntohs(pp[1]);
		}
	}
	return true;
}

static void sn_net_key(const struct archangel_sensor_net *n,
		       struct sn_flow_key *k)
{
	bool out = n->direction == ARCHANGEL_NET_OUT;

	memset(k, 0, sizeof(*k));
	k->family = n->family;
	k->proto = n->protocol;
	k->lport = out ? n->sport : n->dport;
	k->rport = out ? n->dport : n->sport;
	memcpy(k->laddr, out ? n->saddr : n->daddr, 16);
	memcpy(k->raddr, out ? n->daddr : n->saddr, 16);
}

static void sn_net_ids(struct archangel_sensor_net *n,
		       const struct sk_buff *skb, bool task)
{
	struct sock *sk = skb_to_full_sk(skb);
	u32 uid = U32_MAX;

	if (sk && sk_fullsock(sk))
		uid = from_kuid_munged(&init_user_ns, sk->sk_uid);
	sn_fill_ids(&n->ev, ARCHANGEL_SENSOR_NET, task ? current->pid : 0,
		    task ? current->tgid : 0, uid);
}

static void sn_net_event(struct sn_net_msg *m)
{
	sn_emit_batched(ARCHANGEL_SENSOR_NET, ARCHANGEL_MSG_NETWORK_EVENT,
			&m->n, sizeof(m->n));
}

static bool sn_flow_drops(u8 state)
{
	return state == SN_FLOW_DENY || state == SN_FLOW_ASK_DROP;
}

static unsigned int sn_net_verdict(bool drop)
{
	if (!drop)
		return NF_ACCEPT;
	sn_inc(SN_PACKETS_DROPPED);
	return NF_DROP;
}

static u8 sn_flow_verdict(u8 state)
{
	switch (state) {
	case SN_FLOW_ALLOW:
		return ARCHANGEL_VERDICT_ALLOW;
	case SN_FLOW_DENY:
	case SN_FLOW_ASK_DROP:
		return ARCHANGEL_VERDICT_DENY;
	}
	return SN_VERDICT_NONE;
}

static unsigned int sn_nf_hook(void *priv, struct sk_buff *skb,
			       const struct nf_hook_state *state)
{
	struct sn_pending pend;
	struct sn_flow_key k;
	struct sn_net_msg m;
	bool task = in_task();
	u8 fs, policy;
	int v, err;
	u64 h;

	if (!sn_on(ARCHANGEL_SENSORS_ID_NET) ||
	    (task && sn_excluded(current->tgid)))
		return NF_ACCEPT;
	memset(&m.n, 0, sizeof(m.n));
	m.n.direction = state->hook == NF_INET_LOCAL_IN ? ARCHANGEL_NET_IN :
			ARCHANGEL_NET_OUT;
	if (!sn_net_parse(skb, state->pf, &m.n))
		return NF_ACCEPT;
	sn_net_key(&m.n, &k);
	h = sn_hash(&k, sizeof(k));

	if (sn_flow_lookup(&k, h, &fs)) {
		if (READ_ONCE(sn_net_all)) {
			sn_net_ids(&m.n, skb, task);
			m.n.verdict = sn_flow_verdict(fs);
			sn_net_event(&m);
		}
		return sn_net_verdict(sn_flow_drops(fs));
	}

	/* A new flow: the cache, else the policy. */
	sn_net_ids(&m.n, skb, task);
	m.n.ev.flags = ARCHANGEL_NET_F_NEW_FLOW;
	policy = READ_ONCE(sn_cfg[ARCHANGEL_SENSORS_ID_NET].policy);
	v = sn_cache_lookup(ARCHANGEL_SENSORS_ID_NET, h);
	if (v >= 0) {
		fs = v == ARCHANGEL_VERDICT_ALLOW ? SN_FLOW_ALLOW : SN_FLOW_DENY;
		m.n.ev.flags |= ARCHANGEL_NET_F_CACHED;
	} else if (policy == ARCHANGEL_POLICY_OBSERVE) {
		fs = SN_FLOW_OBSERVED;
	} else if (policy == ARCHANGEL_POLICY_ALLOW_ASK) {
		fs = SN_FLOW_ASK_PASS;
	} else {
		fs = SN_FLOW_ASK_DROP;
	}
	/* Another CPU saw it first: it reports (and asks). */
	if (!sn_flow_insert(&k, h, &fs))
		return sn_net_verdict(sn_flow_drops(fs));
	m.n.verdict = sn_flow_verdict(fs);
	if (v >= 0 || fs == SN_FLOW_OBSERVED) {
		sn_net_event(&m);
		return sn_net_verdict(sn_flow_drops(fs));
	}
	sn_pending_prepare(&pend, ARCHANGEL_SENSORS_ID_NET, h);
	pend.policy = policy;
	pend.flow = k;
	err = sn_ask(&pend, &m.req, ARCHANGEL_SENSOR_NET, sizeof(m.n));
	if (err) {
		/* Not asked: the default is the flow's verdict already. */
		fs = pend.def == ARCHANGEL_VERDICT_ALLOW ? SN_FLOW_ALLOW :
		     SN_FLOW_DENY;
		m.n.verdict = pend.def;
		if (err == -ENOSPC)
			sn_net_event(&m);
	}
	return sn_net_verdict(sn_flow_drops(fs));
}

/* A verdict on a flow: its packets from now on. */
void sn_net_apply(struct sn_pending *p, u8 verdict)
{
	sn_flow_set(&p->flow, p->key, verdict == ARCHANGEL_VERDICT_ALLOW ?
		    SN_FLOW_ALLOW : SN_FLOW_DENY);
}

static const struct nf_hook_ops sn_nf_ops[] = {
	{ .hook = sn_nf_hook, .pf = NFPROTO_IPV4,
	  .hooknum = NF_INET_LOCAL_IN, .priority = NF_IP_PRI_FILTER },
	{ .hook = sn_nf_hook, .pf = NFPROTO_IPV4,
	  .hooknum = NF_INET_LOCAL_OUT, .priority = NF_IP_PRI_FILTER },
	{ .hook = sn_nf_hook, .pf = NFPROTO_IPV6,
	  .hooknum = NF_INET_LOCAL_IN, .priority = NF_IP6_PRI_FILTER },
	{ .hook = sn_nf_hook, .pf = NFPROTO_IPV6,
	  .hooknum = NF_INET_LOCAL_OUT, .priority = NF_IP6_PRI_FILTER },
};

/* Registers or unregisters the hooks (unregistering waits for RCU). */
int sn_net_set(bool on)
{
	int err;

	lockdep_assert_held(&sn_cfg_mutex);
	if (on == sn_net_registered)
		return 0;
	if (on) {
		err = nf_register_net_hooks(&init_net, sn_nf_ops,
					    ARRAY_SIZE(sn_nf_ops));
		if (err)
			return err;
	} else {
		nf_unregister_net_hooks(&init_net, sn_nf_ops,
					ARRAY_SIZE(sn_nf_ops));
	}
	sn_net_registered = on;
	return 0;
}
