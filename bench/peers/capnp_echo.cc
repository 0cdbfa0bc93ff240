// SPDX-License-Identifier: MIT
/*
 * capnp_echo - the RPC_RR workload of zcperf on Cap'n Proto two-party RPC
 * (Debian's libcapnp-dev), the peer bench/compare measures against.
 *
 *   capnp_echo -s -p 7004                          server
 *   capnp_echo -p 7004 -r 64,64 -P 16 -d 16 -l 5   client
 *   capnp_echo -p 7004 -P 16 -d 16 --rate 20000 --arrival poisson
 *
 * The interface is echo.capnp: one call with a Data field each way.  Both
 * sides run -T threads, each with its own KJ event loop (Cap'n Proto does
 * its socket I/O on the loop's thread, and its objects belong to it):
 * every server thread listens on the port (SO_REUSEPORT when -T > 1, so
 * the kernel spreads connections over them); the client splits its -P connections
 * (each its own TwoPartyClient, hence its own TCP connection) over its
 * threads.  Each connection keeps -d calls in flight; Cap'n Proto answers
 * them in any order, so each call carries its own times.
 *
 * --rate R (open loop, peer_common.h): each client thread sends R/T calls
 * per second (--arrival const or poisson) on its connections with room
 * (fewer than -d outstanding), latency from the intended time; calls with
 * no room wait and count late.  KJ's loop sleeps in epoll with millisecond
 * timeouts, so a wait is a KJ timer to within a millisecond of the next
 * intended time, then a clock_nanosleep() and a poll of the loop that does
 * not block: answers that arrive during the sleep are timed when it ends,
 * at most one millisecond late.  At the end of the window the thread waits
 * (up to kDrainNs) for the calls still in flight.
 *
 * --idle N: before the active threads connect, a thread of its own (its
 * own KJ loop) opens N more connections (in batches of PEER_IDLE_BATCH),
 * each its own TwoPartyClient through bootstrap and one call, then stops
 * running its loop, so they sit idle, until the run has ended.
 */
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "echo.capnp.h"
#include "peer_common.h"

namespace {

constexpr uint16_t kPort = 7004;
constexpr uint64_t kDrainNs = 5000000000ull;
constexpr uint64_t kMsNs = 1000000u;

void SetNoDelay(kj::AsyncIoStream &s)
{
	int one = 1;

	s.setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Message size hint: the payload's words plus room for the framing. */
capnp::MessageSize SizeHint(size_t bytes)
{
	return capnp::MessageSize{ bytes / 8 + 16, 0 };
}

/* ---- server ------------------------------------------------------------ */

class EchoImpl final : public Echo::Server {
public:
	explicit EchoImpl(const std::string *fixed) : fixed_(fixed) {}

protected:
	kj::Promise<void> call(CallContext ctx) override
	{
		auto data = ctx.getParams().getData();

		if (fixed_) {
			ctx.getResults(SizeHint(fixed_->size()))
				.setData(kj::arrayPtr(
					reinterpret_cast<const kj::byte *>(fixed_->data()),
					fixed_->size()));
		} else {
			ctx.getResults(SizeHint(data.size())).setData(data);
		}
		return kj::READY_NOW;
	}

private:
	const std::string *fixed_;
};

/*
 * A listening socket of its own for one server thread.  With -T > 1 they
 * share the port through SO_REUSEPORT (the kernel spreads connections over
 * them); with one thread they do not, so a second server on a port in use
 * fails instead of silently taking half the connections.
 */
int ListenFd(const peer_opts &o)
{
	struct addrinfo hints = {}, *ai;
	std::string port = std::to_string(o.port);
	int fd, one = 1, ret;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	ret = getaddrinfo(o.host, port.c_str(), &hints, &ai);
	if (ret) {
		fprintf(stderr, "capnp_echo: %s: %s\n", o.host ? o.host : "*",
			gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (o.threads > 1 &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
		ret = -errno;
		fprintf(stderr, "capnp_echo: listen on port %u: %s\n", o.port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return ret;
	}
	freeaddrinfo(ai);
	return fd;
}

kj::Promise<void> AcceptLoop(kj::ConnectionReceiver &listener,
			     capnp::TwoPartyServer &server)
{
	return listener.accept().then(
		[&listener, &server](kj::Own<kj::AsyncIoStream> &&s) {
			SetNoDelay(*s);
			server.accept(kj::mv(s));
			return AcceptLoop(listener, server);
		});
}

/*
 * One server thread: owns @listen_fd, serves until @stop_fd (the read end
 * of a pipe the main thread closes the other end of) reads end-of-file.
 */
void ServeThread(int listen_fd, int stop_fd, const std::string *fixed)
{
	try {
		auto io = kj::setupAsyncIo();
		auto listener = io.lowLevelProvider->wrapListenSocketFd(
			listen_fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
		auto stop = io.lowLevelProvider->wrapInputFd(stop_fd);
		capnp::TwoPartyServer server(kj::heap<EchoImpl>(fixed));
		kj::byte b;

		AcceptLoop(*listener, server)
			.exclusiveJoin(stop->tryRead(&b, 1, 1).ignoreResult())
			.wait(io.waitScope);
	} catch (const kj::Exception &e) {
		fprintf(stderr, "capnp_echo: server: %s\n", e.getDescription().cStr());
	}
}

int Serve(const peer_opts &o)
{
	std::vector<std::thread> threads;
	std::string fixed;
	sigset_t sigs;
	int stop[2], sig, ret = 0;

	/* Blocked before any thread starts, so only sigwait() sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
	if (pipe2(stop, O_CLOEXEC))
		return -errno;
	if (o.resp)
		fixed.assign(o.resp, 'c');
	for (unsigned i = 0; i < o.threads; i++) {
		int fd = ListenFd(o);

		if (fd < 0) {
			ret = fd;
			break;
		}
		threads.emplace_back(ServeThread, fd, stop[0],
				     o.resp ? &fixed : nullptr);
	}
	if (!ret) {
		fprintf(stderr, "capnp_echo: serving on %s:%u (%s)\n",
			o.host ? o.host : "*", o.port,
			o.resp ? "fixed response" : "echo");
		sigwait(&sigs, &sig);
	}
	close(stop[1]);
	for (auto &t : threads)
		t.join();
	close(stop[0]);
	return ret;
}

/* ---- client ------------------------------------------------------------ */

/* Starts every thread's window at once, after all have connected. */
struct StartLatch {
	std::mutex lock;
	std::condition_variable cv;
	unsigned ready = 0;
	bool go = false;
	uint64_t start_ns = 0, end_ns = 0;
};

struct Conn {
	kj::Own<kj::AsyncIoStream> stream;
	kj::Own<capnp::TwoPartyClient> rpc;
	Echo::Client echo = nullptr;
	unsigned n = 0;		/* calls outstanding */
};

struct ClientThread : public kj::TaskSet::ErrorHandler {
	const peer_opts *o = nullptr;
	const kj::byte *payload = nullptr;
	StartLatch *latch = nullptr;
	unsigned index = 0, nconns = 0;
	uint64_t start_ns = 0, end_ns = 0;
	peer_hist hist{};
	bench_ol_counts ol{};
	int err = 0;		/* 0 or -errno, with a message printed */
	/* The loop's thread only, while it runs: */
	kj::Timer *timer = nullptr;
	kj::Own<kj::PromiseFulfiller<void>> wake;
	bool wake_on_answer = false;

	void Wake()
	{
		if (wake && wake->isWaiting())
			wake->fulfill();
	}

	void Fail(int e, const char *what)
	{
		if (!err) {
			fprintf(stderr, "capnp_echo: %s\n", what);
			err = e;
		}
		Wake();
	}

	void taskFailed(kj::Exception &&e) override
	{
		Fail(-ECONNRESET, e.getDescription().cStr());
	}

	/* Runs the loop until @ns from now, or an answer (if wanted) or an
	 * error wakes it. */
	void WaitFor(kj::WaitScope &ws, uint64_t ns)
	{
		auto paf = kj::newPromiseAndFulfiller<void>();

		wake = kj::mv(paf.fulfiller);
		paf.promise.exclusiveJoin(timer->afterDelay(ns * kj::NANOSECONDS))
			.wait(ws);
		wake = nullptr;
	}
};

/*
 * Issues one call on @c: intended at @intended, issued now at @issued (the
 * same in closed loop).  The answer is recorded in the thread's histogram,
 * and, in closed loop, followed by the next call while in the window.
 */
void Issue(ClientThread &t, Conn &c, kj::TaskSet &tasks, uint64_t intended,
	   uint64_t issued)
{
	const peer_opts &o = *t.o;
	auto req = c.echo.callRequest(SizeHint(o.req));

	req.setData(kj::arrayPtr(t.payload, o.req));
	c.n++;
	tasks.add(req.send().then(
		[&t, &c, &tasks, intended, issued](
			capnp::Response<Echo::CallResults> &&r) {
			uint64_t now = peer_now_ns();

			c.n--;
			if (r.getData().size() != t.o->resp) {
				t.Fail(-EPROTO, "response of another size than -r "
					"(server started with other -r?)");
				return;
			}
			if (t.o->rate > 0) {
				peer_ol_answered(&t.ol, &t.hist, intended,
						 issued, now);
				if (t.wake_on_answer)
					t.Wake();
			} else if (now < t.end_ns && !t.err) {
				peer_hist_add(&t.hist, now - intended);
				Issue(t, c, tasks, now, now);
			}
		}));
}

/* Calls still in flight at the end of the window are neither counted nor
 * timed: they are cancelled with the task set. */
void RunClosed(ClientThread &t, std::vector<Conn> &conns, kj::TaskSet &tasks,
	       kj::WaitScope &ws)
{
	uint64_t now;

	for (auto &c : conns)
		for (unsigned k = 0; k < t.o->depth; k++) {
			now = peer_now_ns();
			Issue(t, c, tasks, now, now);
		}
	while (!t.err && (now = peer_now_ns()) < t.end_ns)
		t.WaitFor(ws, t.end_ns - now);
}

void RunOpen(ClientThread &t, std::vector<Conn> &conns, kj::TaskSet &tasks,
	     kj::WaitScope &ws)
{
	uint64_t now, deadline = t.end_ns + kDrainNs;
	size_t rr = 0;
	peer_sched sched;

	peer_sched_init(&sched, t.o, t.index, t.start_ns, t.end_ns);
	while (!t.err && (now = peer_now_ns()) < deadline) {
		Conn *room = nullptr;
		unsigned left = 0;

		/* Everything due goes out while a connection has room. */
		while (peer_sched_due(&sched, now)) {
			room = nullptr;
			for (size_t k = 0; k < conns.size() && !room; k++) {
				Conn &c = conns[(rr + k) % conns.size()];

				if (c.n < t.o->depth) {
					room = &c;
					rr = (rr + k + 1) % conns.size();
				}
			}
			if (!room)
				break;
			Issue(t, *room, tasks, peer_sched_take(&sched, &t.ol), now);
		}
		for (auto &c : conns)
			left += c.n;
		if (!peer_sched_open(&sched) && !left)
			break;
		/* Wait for the next intended time, or for room or the end. */
		if (peer_sched_open(&sched) && (double)now < sched.next) {
			uint64_t wait = (uint64_t)(sched.next - (double)now);

			t.wake_on_answer = false;
			if (wait <= kMsNs) {
				peer_sleep_until_ns((uint64_t)sched.next);
				ws.poll();
			} else {
				t.WaitFor(ws, wait - kMsNs);
			}
		} else {
			t.wake_on_answer = true;
			t.WaitFor(ws, deadline - now);
		}
	}
	/* Intended times never sent, and calls never answered. */
	peer_sched_finish(&sched, &t.ol);
	for (auto &c : conns)
		t.ol.failed += c.n;
}

void RunClientThread(ClientThread *t)
{
	const peer_opts &o = *t->o;
	StartLatch &l = *t->latch;

	try {
		auto io = kj::setupAsyncIo();
		std::vector<Conn> conns(t->nconns);

		t->timer = &io.provider->getTimer();
		try {
			auto addr = io.provider->getNetwork()
					    .parseAddress(o.host, o.port)
					    .wait(io.waitScope);

			for (auto &c : conns) {
				c.stream = addr->connect().wait(io.waitScope);
				SetNoDelay(*c.stream);
				c.rpc = kj::heap<capnp::TwoPartyClient>(*c.stream);
				c.echo = c.rpc->bootstrap().castAs<Echo>();
			}
		} catch (const kj::Exception &e) {
			t->Fail(-ECONNREFUSED, e.getDescription().cStr());
		}
		{
			std::unique_lock<std::mutex> g(l.lock);

			l.ready++;
			l.cv.notify_all();
			l.cv.wait(g, [&l] { return l.go; });
			t->start_ns = l.start_ns;
			t->end_ns = l.end_ns;
		}
		if (t->err)
			return;
		kj::TaskSet tasks(*t);

		if (o.rate > 0)
			RunOpen(*t, conns, tasks, io.waitScope);
		else
			RunClosed(*t, conns, tasks, io.waitScope);
	} catch (const kj::Exception &e) {
		t->Fail(-EIO, e.getDescription().cStr());
	}
}

/* The --idle connections' thread and the main thread meet here twice:
 * once all are up (or failed), and when the run has ended. */
struct IdleGate {
	std::mutex lock;
	std::condition_variable cv;
	bool up = false, done = false;
	int err = 0;

	void Set(bool IdleGate::*flag)
	{
		std::lock_guard<std::mutex> g(lock);

		this->*flag = true;
		cv.notify_all();
	}

	void Wait(bool IdleGate::*flag)
	{
		std::unique_lock<std::mutex> g(lock);

		cv.wait(g, [this, flag] { return this->*flag; });
	}
};

/* Opens and proves o.idle connections, holds them until @gate is done;
 * they belong to this thread's loop and are destroyed on it. */
void RunIdle(const peer_opts *o, const kj::byte *payload, IdleGate *gate)
{
	try {
		auto io = kj::setupAsyncIo();
		auto addr = io.provider->getNetwork()
				    .parseAddress(o->host, o->port)
				    .wait(io.waitScope);
		auto deadline = io.provider->getTimer().afterDelay(
			PEER_IDLE_DEADLINE_NS * kj::NANOSECONDS);
		auto timeout = deadline.fork();
		std::vector<Conn> conns(o->idle);

		for (unsigned first = 0; first < o->idle; first += PEER_IDLE_BATCH) {
			unsigned n = std::min(o->idle, first + PEER_IDLE_BATCH);
			kj::Vector<kj::Promise<void>> calls;

			for (unsigned i = first; i < n; i++) {
				Conn &c = conns[i];

				c.stream = addr->connect().wait(io.waitScope);
				c.rpc = kj::heap<capnp::TwoPartyClient>(*c.stream);
				c.echo = c.rpc->bootstrap().castAs<Echo>();
				auto req = c.echo.callRequest(SizeHint(o->req));
				req.setData(kj::arrayPtr(payload, o->req));
				calls.add(req.send().ignoreResult());
			}
			kj::joinPromises(calls.releaseAsArray())
				.exclusiveJoin(timeout.addBranch().then([]() {
					KJ_FAIL_REQUIRE("idle connections: no answer in time");
				}))
				.wait(io.waitScope);
		}
		gate->Set(&IdleGate::up);
		gate->Wait(&IdleGate::done);
	} catch (const kj::Exception &e) {
		fprintf(stderr, "capnp_echo: idle connections: %s\n",
			e.getDescription().cStr());
		gate->err = -ECONNREFUSED;
		gate->Set(&IdleGate::up);
	}
}

int RunClient(const peer_opts &o)
{
	std::vector<ClientThread> threads(o.threads);
	std::vector<std::thread> running;
	std::vector<kj::byte> payload(o.req, 'c');
	StartLatch latch;
	bench_ol_counts ol{};
	peer_hist *total = new peer_hist{};
	PeerRss rss(o);
	IdleGate gate;
	std::thread idle;
	int ret = 0;

	rss.before_kb = peer_rss_sample(&rss);
	if (o.idle) {
		idle = std::thread(RunIdle, &o, payload.data(), &gate);
		gate.Wait(&IdleGate::up);
		if (gate.err) {
			idle.join();
			delete total;
			return gate.err;
		}
	}
	rss.idle_kb = peer_rss_sample(&rss);

	for (unsigned i = 0; i < o.threads; i++) {
		unsigned first = i * o.conns / o.threads;
		ClientThread &t = threads[i];

		t.o = &o;
		t.payload = payload.data();
		t.latch = &latch;
		t.index = i;
		t.nconns = (i + 1) * o.conns / o.threads - first;
		running.emplace_back(RunClientThread, &t);
	}
	{
		std::unique_lock<std::mutex> g(latch.lock);

		latch.cv.wait(g, [&] { return latch.ready == o.threads; });
		latch.start_ns = peer_now_ns();
		latch.end_ns = latch.start_ns + (uint64_t)(o.seconds * 1e9);
		latch.go = true;
		latch.cv.notify_all();
	}
	for (auto &r : running)
		r.join();
	rss.end_kb = peer_rss_sample(&rss);
	if (o.idle) {
		gate.Set(&IdleGate::done);
		idle.join();
	}
	for (auto &t : threads) {
		if (t.err && !ret)
			ret = t.err;
		peer_hist_merge(total, &t.hist);
		bench_ol_counts_add(&ol, &t.ol);
	}
	if (!ret && !total->count) {
		fprintf(stderr, "capnp_echo: no answer from %s:%u in %.1f s\n",
			o.host, o.port, o.seconds);
		ret = -ETIMEDOUT;
	}
	if (!ret)
		peer_print_result_ol("capnp", &o,
				     (latch.end_ns - latch.start_ns) / 1e9, total,
				     o.rate > 0 ? &ol : nullptr,
				     o.idle || o.server_pid ? &rss : nullptr);
	delete total;
	return ret;
}

} // namespace

int main(int argc, char **argv)
{
	return peer_main(argc, argv, "capnp_echo", kPort, false,
			 [](const peer_opts *o) { return Serve(*o); },
			 [](const peer_opts *o) { return RunClient(*o); });
}
