// SPDX-License-Identifier: GPL-2.0
/*
 * The seed's two usage examples, verbatim, in a module.
 *
 * The bodies of seed_send_ai_request() and seed_receive_ai_response() are
 * the seed's "Usage Examples", unchanged (seed_send.inc, seed_receive.inc);
 * everything around them (struct ai_request/ai_response, AI_CLASSIFY_PACKET,
 * HIGH_PRIORITY, packet_size, handle_ai_response) is what the seed leaves
 * to the caller.
 * On load it makes sure channel 0 exists, sends the request, tries to
 * receive a response, and prints what happened.
 *
 * Build: make -C kernel examples (KBUILD_EXTRA_SYMBOLS=../Module.symvers).
 */
#include <linux/module.h>
#include <linux/printk.h>
#include <archangel_comm.h>

#define AI_CLASSIFY_PACKET	1
#define HIGH_PRIORITY		2

struct ai_request {
	u32 operation;
	u32 data_size;
	u32 priority;
};

struct ai_response {
	u32 verdict;
	u32 confidence;
	u64 request;
};

static u32 packet_size = 1500;
module_param(packet_size, uint, 0444);

static bool created_channel;

static void handle_ai_response(struct ai_response *resp)
{
	pr_info("seed_example: AI response: verdict %u confidence %u\n",
		resp->verdict, resp->confidence);
}

/*
 * The seed's snippets are kept byte for byte (its 4-space indentation
 * included) in seed_send.inc and seed_receive.inc, outside checkpatch's
 * reach: they are the seed's text, not our style.
 */
static int seed_send_ai_request(void)
{
#include "seed_send.inc"
	return ret;
}

static int seed_receive_ai_response(void)
{
#include "seed_receive.inc"
	return ret;
}

static int __init seed_example_init(void)
{
	u32 id;
	int ret;

	if (!archangel_comm_channel_get(0)) {
		ret = archangel_comm_channel_create(&id);
		if (ret < 0) {
			pr_err("seed_example: cannot create a channel: %d\n", ret);
			return ret;
		}
		created_channel = id == 0;
		pr_info("seed_example: created channel %u\n", id);
	}
	ret = seed_send_ai_request();
	pr_info("seed_example: send AI request on channel 0: %d\n", ret);
	ret = seed_receive_ai_response();
	pr_info("seed_example: receive AI response on channel 0: %d%s\n", ret,
		ret == -EAGAIN ? " (none queued yet)" : "");
	return 0;
}

static void __exit seed_example_exit(void)
{
	int ret = seed_receive_ai_response();

	pr_info("seed_example: receive AI response on channel 0: %d\n", ret);
	if (created_channel)
		archangel_comm_channel_destroy(0);
}

module_init(seed_example_init);
module_exit(seed_example_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("The seed's archangel_comm usage examples");
