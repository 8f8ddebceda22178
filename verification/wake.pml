/*
 * The wake-up protocol of one channel direction, for spin
 * (docs/memory-ordering.md, "The model"; verification/README.md).
 *
 * One producer and one consumer share, per lane (normal, express): the
 * producer index, the consumer index, the need-wakeup word and the
 * need-space word, plus two eventfds (data and space).
 *
 *   Producer  MessageSender.trySend / publish / prepareToWait(.ringFull)
 *             (Sources/ArchangelCore/MessageSender.swift, WakeCoalescer.swift,
 *             RecordRingProducer.swift), or with -DKERNEL_TX the module's
 *             ach_publish_locked (kernel/archangel_msg.c): one hrtimer
 *             instead of the WakeTimer heap.
 *   Consumer  MessageReceiver.next / deliver / announce (MessageReceiver.swift,
 *             RecordRingConsumer.swift) driven by ReceivePath.adaptiveLoop
 *             (or spinThenSleep when not adaptive).
 *
 * Memory is x86-TSO: a plain store goes into its writer's FIFO store buffer
 * and reaches memory later (process Drain), a load sees the writer's own
 * newest buffered store first, and a full fence empties the buffer.
 *
 * Time is discrete and relative. The clock ticks only when nothing else can
 * move (Promela's timeout), so a woken side runs in no time and "W plus one
 * wake-up" becomes "W ticks". Every time the protocol keeps (the coalescer's
 * tat, pendingUntil and pacedDue, timer deadlines, the receiver's timed
 * sleep, the age of every queued message) is kept as ticks from now and
 * counted down (or up) by Ticker, clamped where a further tick changes
 * nothing, so that runs at different absolute times share states.
 *
 * Configurations (scripts/model-check runs them):
 *   (none)        adaptive; the receiver blocks or takes timed polls (express word only)
 *   -DPACED       adaptive; the receiver blocks or takes paced polls (normal word only)
 *   -DLOWLAT      not adaptive (.lowLatency): every new sleep signalled, the receiver blocks
 *   -DKERNEL_TX   the module's producer instead of MessageSender's
 *   -DSPACE       records of 1 or 3 units in a ring of 8: the producer waits for room
 *   -DPLAIN_ONLY  no urgent or noWakeup sends     -DONE_LANE  normal-lane messages only
 *   -DUNCAPPED    the wake-up budget bug as it was (see signalled): tat not capped
 *   -DNO_FENCE    drop the consumer's (F)        -DNO_FENCE_E  drop the producer's (E)
 *   -DNO_FENCE_H  drop the producer's (H)        -DNO_FENCE_G  drop the consumer's (G)
 *
 * Properties (assertions; the search also reports invalid end states):
 *   delay     no published message is still queued BOUND ticks after its
 *             publication (BOUND = W: "W plus one wake-up"); a lost wake-up
 *             is the case where it would never be delivered;
 *   room      the producer never sleeps on a full ring for more than BOUND ticks;
 *   wake-ups  at most SIGMAX data-eventfd writes per receiver sleep (from
 *             one announcement to the next);
 *   with -DNP and pan -l: no cycle without a tick (no zero-time livelock).
 */

#ifndef W
#define W 10                    /* the window, in ticks */
#endif
#define TOL (W / 10)            /* WakeCoalescer.tolerance */
#define INTERVAL (W - W / 10)   /* WakeCoalescer.interval */
#define PACED_SPACING (W - W / 20)
#ifndef NMSG
#define NMSG 3                  /* messages the producer sends */
#endif
#ifndef GAPMAX
#define GAPMAX (W + 1)          /* longest gap before a message, in ticks */
#endif
#ifndef BOUND
#define BOUND W                 /* the delay bound checked */
#endif
#ifndef SIGMAX
#define SIGMAX 3                /* one per lane, and one late for the sleep before */
#endif
#define EPM 8                   /* episodes are counted mod EPM (31 bits in the code) */

#define S 8                     /* ring size, in units, of each lane */
#define WAKE_BATCH (S / 4)      /* wakeBatch 0: a quarter of the lane */
#define REL_BATCH (S / 4)       /* RecordRingConsumer.releaseBatch */

#define NORMAL 0
#define EXPRESS 1

#ifdef LOWLAT
#define ADAPTIVE 0
#else
#define ADAPTIVE 1
#endif

/* ------------------------------------------------------------------ */
/* Shared memory and the store buffers */

#define PROD(l) (0 + (l))       /* kProducer */
#define CONS(l) (2 + (l))       /* kConsumer */
#define NW(l)   (4 + (l))       /* kNeedWakeup */
#define NS(l)   (6 + (l))       /* kNeedSpace */
byte mem[8];

#define TX 0                    /* the producer's buffer */
#define RX 1                    /* the consumer's */
#define SBN 4                   /* no path stores more than 4 times between fences */
byte sbA[8];                    /* [p * SBN + i]: address */
byte sbV[8];                    /* value */
byte sbN[2];

/*
 * ST, LD and STF are plain statement sequences, for use inside a d_step or
 * an atomic that holds no other access to shared memory; store, load and
 * store_fence are the same as steps of their own.
 */
inline ST(pr, ad, vv) {
    assert(sbN[pr] < SBN);      /* the step holding ST begins with ROOM(pr) */
    sbA[pr * SBN + sbN[pr]] = ad;
    sbV[pr * SBN + sbN[pr]] = vv;
    sbN[pr]++
}

/* A load sees the newest store in its own buffer, else memory. */
inline LD(pr, ad, rv) {
    rv = mem[ad];
    i = 0;
    do
    :: i < sbN[pr] -> if :: sbA[pr * SBN + i] == ad -> rv = sbV[pr * SBN + i] :: else fi; i++
    :: else -> break
    od;
    i = 0
}

/*
 * A store followed by a full fence with no load in between: the buffer
 * drains, then the store reaches memory. The other side cannot tell this
 * from a store and a fence (a store still buffered looks like one not made
 * yet), and it has fewer interleavings.
 */
inline STF(pr, ad, vv) {
    i = 0;
    do
    :: i < sbN[pr] -> mem[sbA[pr * SBN + i]] = sbV[pr * SBN + i]; sbA[pr * SBN + i] = 0; sbV[pr * SBN + i] = 0; i++
    :: else -> break
    od;
    sbN[pr] = 0;
    i = 0;
    mem[ad] = vv
}

/* A full buffer stalls the writer: the first statement of every step that holds an ST. */
#define ROOM(pr) (sbN[pr] < SBN)

inline store(pr, ad, vv) { d_step { ROOM(pr) -> ST(pr, ad, vv) } }
inline load(pr, ad, rv) { d_step { LD(pr, ad, rv) } }
inline store_fence(pr, ad, vv) { d_step { STF(pr, ad, vv) } }

proctype Drain(byte p) {
    byte j;
end:
    do
    :: d_step {
           sbN[p] > 0 ->
           mem[sbA[p * SBN]] = sbV[p * SBN];
           j = 1;
           do
           :: j < sbN[p] -> sbA[p * SBN + j - 1] = sbA[p * SBN + j]; sbV[p * SBN + j - 1] = sbV[p * SBN + j]; j++
           :: else -> break
           od;
           sbN[p]--;
           sbA[p * SBN + sbN[p]] = 0; sbV[p * SBN + sbN[p]] = 0;
           j = 0
       }
    od
}

/* ------------------------------------------------------------------ */
/* Eventfds, the queued messages, and the times Ticker counts */

bool efd;                       /* data eventfd: a read clears the whole count, so only 0 / not 0 shows */
bool sfd;                       /* space eventfd */
byte sigs;                      /* data-eventfd writes since the receiver's last announcement */

/* The records each lane holds (published, not consumed), oldest first. */
byte qa[2 * NMSG];              /* age in ticks */
byte qs[2 * NMSG];              /* stride in units */
byte qn[2];

/* The producer's coalescer, in ticks from now (0: now or past). */
byte tatr;                      /* tat */
byte pendr;                     /* pendingUntil (0: none, or passed) */
byte pacedr;                    /* pacedDue */

/* The trailing edge: MessageSender's WakeTimer heap, or the module's one hrtimer (-DKERNEL_TX). */
#define NT 3
byte tmr[NT];                   /* 0 free, else 1 + ticks to the deadline */
byte ktimer;                    /* same, the hrtimer */

byte pollr;                     /* the receiver's timed sleep: 0 none, else 1 + ticks left */
byte swait;                     /* the producer sleeps on room: 0 no, else 1 + ticks asleep */
bit tick;                       /* flips at every tick */

inline signal_data() {
    d_step {
        efd = 1; sigs++;
        printf("producer signals (tat +%d)\n", tatr);
        assert(sigs <= SIGMAX)
    }
}

/* ------------------------------------------------------------------ */
/* The producer */

#define URGENT 1
#define NOWAKE 2

/*
 * WakeCoalescer.signalled(at:), ach_co_signalled():
 * tat = min(max(tat, now) + interval, now + W). A signal that goes out
 * whatever the budget (urgent, a lane past the wake batch) still advances
 * tat, but never past one window from now. -DUNCAPPED is the code before
 * that cap, where tat could run any number of windows ahead and a normal
 * message's trailing edge with it (the model found it).
 */
inline signalled() {
    tatr = tatr + INTERVAL;
#ifndef UNCAPPED
    if :: tatr > W -> tatr = W :: else fi;
#endif
    pacedr = PACED_SPACING
}

/* RecordRingProducer.unreadExceeds(wakeBatch) */
inline unread_exceeds(l, res) {
    if
    :: ppub[l] - cc[l] <= WAKE_BATCH -> res = false
    :: else ->
        d_step {
            LD(TX, CONS(l), c);         /* (D) */
            cc[l] = c; c = 0;
            res = (ppub[l] - cc[l] > WAKE_BATCH)
        }
    fi
}

/* MessageSender.lanesPastWakeBatch, ach_lanes_past_batch: express first */
inline lanes_past(res) {
    unread_exceeds(EXPRESS, res);
    if :: !res -> unread_exceeds(NORMAL, res) :: else fi
}

/*
 * Each step below (a d_step or an atomic) holds at most one access to
 * shared memory or an eventfd, plus the private and bookkeeping work that
 * follows it: the interleavings are those of the code, with fewer states.
 */
proctype Producer() {
    /* private: own index, published, cachedConsumer, lastWoken, spaceEpisode */
    byte pP[2], ppub[2], cc[2], lw[2], sep[2];
    byte m, l, st, opt, gap, c, nword, eword, i, at;
    bool urgent, blocking, polling, fl, lf, ewread, sig;
    bit t0;

    do
    :: m == NMSG -> break
    :: else ->
        /* Any gap before the next message. */
        do
        :: gap < GAPMAX -> t0 = tick; (tick != t0); gap++
        :: break
        od;
        /* normal, high (express); normal urgent, normal noWakeup, critical (express, urgent) */
        atomic {
            gap = 0; t0 = 0;
            if
            :: l = NORMAL; opt = 0
#ifndef ONE_LANE
            :: l = EXPRESS; opt = 0
#endif
#ifndef PLAIN_ONLY
            :: l = NORMAL; opt = URGENT
            :: l = NORMAL; opt = NOWAKE
            :: l = EXPRESS; opt = URGENT
#endif
            fi;
#ifdef SPACE
            if :: st = 1 :: st = 3 fi;  /* under half the ring, as every record is (padding left out) */
#else
            st = 1;                     /* three never fill the ring */
#endif
            urgent = (opt == URGENT)
        };

reserve:    /* RecordRingProducer.reserve */
        atomic {
            if
            :: pP[l] + st - cc[l] > S ->
                LD(TX, CONS(l), c);     /* (D) */
                cc[l] = c; c = 0;
                if
                :: pP[l] + st - cc[l] > S -> goto waitspace
                :: else
                fi
            :: else
            fi
        };

        /* commit, then publish(): (A) the index store and (E) */
        d_step {
            ROOM(TX);
            pP[l] = pP[l] + st; ppub[l] = pP[l];
            qa[l * NMSG + qn[l]] = 0; qs[l * NMSG + qn[l]] = st; qn[l]++;
            printf("publish msg %d lane %d opt %d stride %d\n", m, l, opt, st);
#ifndef NO_FENCE_E
            STF(TX, PROD(l), pP[l])     /* seq_cst store (xchg); smp_store_release + smp_mb() */
#else
            ST(TX, PROD(l), pP[l])      /* (A) only */
#endif
        };
        atomic {
            LD(TX, NW(NORMAL), nword);
            printf("producer reads need_wakeup normal %d (last signalled %d)\n", nword, lw[NORMAL]);
            blocking = ((nword & 1) && nword != lw[NORMAL]);
            ewread = false; fl = false; lf = false; sig = false;
            if
            :: blocking && !urgent && ADAPTIVE -> skip
            :: else -> goto notpaced
            fi
        };
        atomic {
            LD(TX, NW(EXPRESS), eword);
            printf("producer reads need_wakeup express %d\n", eword);
            ewread = true;
            if :: (eword & 1) -> goto notpaced :: else fi
        };
        /* A paced poll: the leading edge only, at most once per PACED_SPACING, no timer. */
#ifdef KERNEL_TX
        if :: pacedr > 0 -> lanes_past(lf) :: else -> lf = true fi;
#else
        lanes_past(lf);                 /* evaluated as the argument */
#endif
        atomic {
            if
            :: lf || pacedr == 0 -> signalled(); lw[NORMAL] = nword; sig = true
            :: else                     /* suppressed */
            fi;
            goto signal
        };

notpaced:
        if :: !blocking && !urgent && ADAPTIVE -> lanes_past(fl) :: else fi;
        if :: !blocking && !urgent && !fl && ADAPTIVE -> goto done :: else fi;
        atomic {
            if
            :: !ewread -> LD(TX, NW(EXPRESS), eword);
                printf("producer reads need_wakeup express %d (last signalled %d)\n", eword, lw[EXPRESS])
            :: else
            fi;
            polling = ((eword & 1) && eword != lw[EXPRESS]);
            if
            :: !blocking && !polling ->
                /* A full lane brings a pending trailing edge forward. */
#ifdef KERNEL_TX
                if :: fl && ktimer != 0 -> pendr = 0; signalled(); sig = true :: else fi;
#else
                if :: fl && pendr > 0 -> pendr = 0; signalled(); sig = true :: else fi;  /* firedEarly */
#endif
                goto signal
            :: else
            fi;
            if :: blocking -> lw[NORMAL] = nword :: else fi;
            if :: polling -> lw[EXPRESS] = eword :: else fi;
            if :: !ADAPTIVE -> sig = true; goto signal :: else fi;
            if :: urgent || fl -> signalled(); sig = true; goto signal :: else fi
        };
        /* decide(laneFull:) in Swift; the ach_lanes_past_batch() before ach_co_decide() in C */
        lanes_past(lf);
        atomic {
            if :: lf -> signalled(); sig = true; goto signal :: else fi;
            /* WakeCoalescer.decide, ach_co_decide */
            if :: pendr > 0 -> printf("merged\n"); goto done :: else fi;
            at = (tatr > TOL -> tatr - TOL : 0);    /* earliest, from now */
            if :: opt != NOWAKE && at == 0 -> signalled(); sig = true; goto signal :: else fi;
            if :: opt == NOWAKE && at < W -> at = W :: else fi;
            printf("trailing edge in %d\n", at);
            pendr = at;
            tatr = (tatr > at -> tatr : at) + INTERVAL;
#ifdef KERNEL_TX
            /* A timer still queued fires within a window and covers this sleep. */
            if
            :: ktimer != 0 -> pendr = 0
            :: else -> ktimer = at + 1
            fi;
#else
            /* WakeTimer.schedule */
            i = 0;
            do
            :: i < NT && tmr[i] == 0 -> tmr[i] = at + 1; break
            :: i < NT && tmr[i] != 0 -> i++
            :: else -> assert(false)
            od;
            i = 0;
#endif
            goto done
        };

waitspace:  /* MessageSender.prepareToWait(.ringFull), RecordRingProducer.prepareToWaitForSpace */
        skip;
        d_step {
            ROOM(TX);
            sep[l] = (sep[l] + 1) % EPM;
#ifndef NO_FENCE_H
            STF(TX, NS(l), sep[l] * 2 + 1)  /* then (H) */
#else
            ST(TX, NS(l), sep[l] * 2 + 1)
#endif
        };
        atomic {
            LD(TX, CONS(l), c);
            cc[l] = c; c = 0;
            if
            :: pP[l] + st - cc[l] > S ->
                printf("producer sleeps on room (consumer index %d)\n", cc[l]);
                swait = 1;
                sfd;                        /* ppoll(space eventfd), no timeout */
                sfd = 0; swait = 0          /* the read */
            :: else
            fi
        };
        store(TX, NS(l), sep[l] * 2);       /* finishWaitingForSpace */
        goto reserve;

signal:
        if :: sig -> signal_data() :: else fi;
done:
        atomic {
            m++; nword = 0; eword = 0; at = 0; st = 0; opt = 0; l = 0; sig = 0;
            urgent = 0; blocking = 0; polling = 0; fl = 0; lf = 0; ewread = 0
        }
    od;
end:
    skip
}

/* ------------------------------------------------------------------ */
/* The consumer */

#define BLOCK 0
#define TPOLL 1                 /* timed poll: express word only */
#define PPOLL 2                 /* paced poll: normal word only */

/*
 * The need-space check of release() and settle(). Without -DSPACE no
 * record is over one unit and three never fill the ring: the producer never
 * raises need_space, the load would always read 0, and leaving it out
 * removes only interleavings.
 */
#ifdef SPACE
#define NS_CHECK(l, res) \
        load(RX, NS(l), w); \
        if :: (w & 1) && w != lss[l] -> lss[l] = w; res = true :: else fi; \
        w = 0
#else
#define NS_CHECK(l, res) skip
#endif

/* RecordRingConsumer.release: (C), (G), need_space */
inline release(l, res) {
    res = false;
    if
    :: cn[l] != rel[l] ->
        d_step {
            ROOM(RX);
            rel[l] = cn[l]; cpub[l] = cn[l];
#ifndef NO_FENCE_G
            STF(RX, CONS(l), cn[l])     /* (C) then (G) */
#else
            ST(RX, CONS(l), cn[l])      /* (C) only */
#endif
        };
        NS_CHECK(l, res)
    :: else
    fi
}

/* RecordRingConsumer.settle: (C) only, no fence */
inline settle(l, res) {
    res = false;
    if
    :: cn[l] != cpub[l] ->
        d_step { ROOM(RX) -> cpub[l] = cn[l]; ST(RX, CONS(l), cn[l]) };
        NS_CHECK(l, res)
    :: else
    fi
}

/* MessageReceiver.releaseConsumed */
inline release_consumed() {
    settle(EXPRESS, a);
    settle(NORMAL, b);
    if :: a || b -> sfd = 1 :: else fi;
    a = 0; b = 0
}

/*
 * RecordRingConsumer.hasData (the refresh in peek is the same), and with
 * @take, MessageReceiver.deliver of the record found: the bookkeeping of the
 * queued records commutes with the producer's, so it joins the load.
 */
inline has_data(l, res, take) {
    d_step {
        if
        :: cn[l] != cp[l] -> res = true
        :: else ->
            LD(RX, PROD(l), p);         /* (B) */
            cp[l] = p; p = 0;
            res = (cp[l] != cn[l])
        fi;
        if
        :: res && take ->
            assert(qn[l] > 0 && qs[l * NMSG] > 0);
            printf("deliver lane %d, age %d\n", l, qa[l * NMSG]);
            cn[l] = cn[l] + qs[l * NMSG];
            k = 1;
            do
            :: k < qn[l] -> qa[l * NMSG + k - 1] = qa[l * NMSG + k]; qs[l * NMSG + k - 1] = qs[l * NMSG + k]; k++
            :: else -> break
            od;
            qn[l]--;
            qa[l * NMSG + qn[l]] = 0; qs[l * NMSG + qn[l]] = 0;
            k = 0; got = true
        :: else
        fi
    }
}

/* RecordRingConsumer.advance: a fenced release every quarter ring */
inline advance(l) {
    a = false;
    if :: cn[l] - rel[l] >= REL_BATCH -> release(l, a) :: else fi;
    if :: a -> sfd = 1 :: else fi;
    a = 0
}

/* Followed by (F) with no load in between (see STF). */
inline SET_NEED_WAKEUP(l) {
    wep[l] = (wep[l] + 1) % EPM;
#ifndef NO_FENCE
    STF(RX, NW(l), wep[l] * 2 + 1)
#else
    ST(RX, NW(l), wep[l] * 2 + 1)
#endif
}

inline clear_need_wakeup(l) {
    d_step { ROOM(RX) -> ST(RX, NW(l), wep[l] * 2) }
}

proctype Receiver() {
    /* private: consumer, published, released, cachedProducer, wakeEpisode, lastSpaceSignalled */
    byte cn[2], cpub[2], rel[2], cp[2], wep[2], lss[2];
    byte p, w, k, i, mode;
    bool a, b, d1, d2, lastPoll, got;

next:   /* MessageReceiver.next: express first; on empty, releaseConsumed */
    skip;
    has_data(EXPRESS, d1, true);
    if :: d1 -> d1 = 0; advance(EXPRESS); goto next :: else fi;
    has_data(NORMAL, d2, true);
    if :: d2 -> d2 = 0; advance(NORMAL); goto next :: else fi;
    release_consumed();

    /*
     * AdaptiveReceiveWait.onEmpty: any choice the policy could make, except
     * that a poll after which nothing was received goes back to blocking
     * (its gap becomes at least a window). A spin is a run of re-checks,
     * which the interleavings cover: left out.
     */
    if
    :: mode = BLOCK
#if ADAPTIVE
#ifdef PACED
    :: !(lastPoll && !got) -> mode = PPOLL
#else
    :: !(lastPoll && !got) -> mode = TPOLL
#endif
#endif
    fi;
    lastPoll = (mode != BLOCK);
    got = false;

    /* MessageReceiver.announce: releaseConsumed, arm, (F), re-check */
    release_consumed();
    if
    :: mode != PPOLL ->
        d_step { ROOM(RX) -> sigs = 0; printf("receiver announces mode %d\n", mode); SET_NEED_WAKEUP(EXPRESS) };
        if :: mode != TPOLL -> d_step { ROOM(RX) -> SET_NEED_WAKEUP(NORMAL) } :: else fi
    :: else ->
        d_step { ROOM(RX) -> sigs = 0; printf("receiver announces mode %d\n", mode); SET_NEED_WAKEUP(NORMAL) }
    fi;
    has_data(EXPRESS, d1, false);
    has_data(NORMAL, d2, false);
    if
    :: d1 || d2 -> d1 = 0; d2 = 0; goto finish
    :: else
    fi;
    /* EventFD.wait: ppoll, then a read that clears the count */
    printf("receiver sleeps, mode %d (producer index seen %d %d)\n", mode, cp[0], cp[1]);
    if
    :: mode == BLOCK ->
end_block:
        d_step { efd -> efd = 0 }
    :: else ->
end_poll:
        atomic {
            pollr = W + 1;
            if
            :: efd -> efd = 0; pollr = 0
            :: pollr == 1 -> pollr = 0
            fi
        }
    fi;
finish:
    /* finishSleep clears both words (the unarmed one keeps its value), finishPoll the express one */
    if :: mode != PPOLL -> clear_need_wakeup(EXPRESS) :: else fi;
    if :: mode != TPOLL -> clear_need_wakeup(NORMAL) :: else fi;
    mode = 0;
    goto next
}

/* ------------------------------------------------------------------ */
/* The trailing edge, and the clock */

proctype Timer() {
    byte i;
end:
    do
#ifdef KERNEL_TX
    :: d_step { ktimer == 1 -> ktimer = 0; efd = 1; sigs++; printf("hrtimer fires\n"); assert(sigs <= SIGMAX) }
#else
    :: d_step {
           (tmr[0] == 1 || tmr[1] == 1 || tmr[2] == 1) ->
           i = 0;
           do
           :: tmr[i] == 1 -> tmr[i] = 0; break
           :: else -> i++
           od;
           i = 0;
           efd = 1; sigs++; printf("WakeTimer fires\n");
           assert(sigs <= SIGMAX)
       }
#endif
    od
}

/* Decrements a "1 + ticks left" deadline down to 1 (due). */
#define COUNT_DOWN(x) if :: x > 1 -> x-- :: else fi

active proctype Ticker() {
    byte i;
end:
    do
    :: timeout ->
        d_step {
            i = 0;
            do
            :: i < 2 * NMSG ->
                /* delay: every message queued BOUND ticks would have been delivered */
                assert(!(i % NMSG < qn[i / NMSG] && qa[i] >= BOUND));
                if :: i % NMSG < qn[i / NMSG] -> qa[i]++ :: else fi;
                i++
            :: else -> break
            od;
            /* room: the producer is not left asleep on space it has */
            assert(swait < BOUND + 1);
            if :: swait > 0 -> swait++ :: else fi;
            if :: tatr > 0 -> tatr-- :: else fi;
            if :: pendr > 0 -> pendr-- :: else fi;
            if :: pacedr > 0 -> pacedr-- :: else fi;
            COUNT_DOWN(tmr[0]); COUNT_DOWN(tmr[1]); COUNT_DOWN(tmr[2]);
            COUNT_DOWN(ktimer);
            COUNT_DOWN(pollr);
            i = 0
        };
progress:
        tick = 1 - tick
    od
}

init {
    atomic {
        run Drain(TX);
        run Drain(RX);
        run Timer();
        run Producer();
        run Receiver()
    }
}
