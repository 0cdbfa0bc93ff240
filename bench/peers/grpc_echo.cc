// SPDX-License-Identifier: MIT
/*
 * grpc_echo - the RPC_RR workload of zcperf on gRPC C++ (Debian's
 * libgrpc++), unary calls, the peer bench/compare measures against.
 *
 *   grpc_echo -s -p 7003                          server
 *   grpc_echo -p 7003 -r 64,64 -P 16 -d 16 -l 5   client
 *
 * Both sides use the asynchronous completion-queue API, gRPC's fastest:
 * -T threads, each polling its own completion queue (gRPC does the socket
 * I/O on the thread that polls).  Each client connection is its own
 * channel with a local subchannel pool, so -P channels are -P TCP
 * connections rather than one shared HTTP/2 connection; each keeps -d
 * unary calls in flight, as HTTP/2 streams.
 *
 * --rate R (open loop, peer_common.h): each client thread sends R/T calls
 * per second (--arrival const or poisson); see RunOpen().
 *
 * --idle N: before the active channels, N more channels (their own TCP
 * connections too), each through WaitForConnected and one blocking call,
 * held idle until the run has ended.
 *
 * --tls: gRPC's own TLS (grpc::SslServerCredentials / SslCredentials),
 * the server with --cert/--key, the client verifying it against --ca for
 * the name "localhost" (bench/compare makes a throwaway certificate).
 *
 *   grpc_echo -s --tls --cert server.pem --key server.key
 *   grpc_echo --tls --ca ca.pem -r 64,64 -P 16 -d 16
 */
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include <grpcpp/grpcpp.h>

#include "echo.grpc.pb.h"
#include "peer_common.h"

namespace {

constexpr uint16_t kPort = 7003;
constexpr uint64_t kDrainGuardNs = 5000000000ull;
constexpr uint64_t kMsNs = 1000000u;
constexpr unsigned kMaxPostedPerQueue = 4096;

/* ---- TLS --------------------------------------------------------------- */

/* The whole file at @path into @out; false when it cannot be read. */
bool ReadFile(const char *path, std::string *out)
{
	std::ifstream f(path, std::ios::binary);

	if (!f)
		return false;
	out->assign(std::istreambuf_iterator<char>(f),
		    std::istreambuf_iterator<char>());
	return true;
}

std::shared_ptr<grpc::ServerCredentials> ServerCreds(const peer_opts &o)
{
	grpc::SslServerCredentialsOptions ssl;
	grpc::SslServerCredentialsOptions::PemKeyCertPair pair;

	if (!o.tls)
		return grpc::InsecureServerCredentials();
	if (!ReadFile(o.cert, &pair.cert_chain) ||
	    !ReadFile(o.key, &pair.private_key)) {
		fprintf(stderr, "grpc_echo: cannot read %s or %s\n", o.cert,
			o.key);
		return nullptr;
	}
	ssl.pem_key_cert_pairs.push_back(pair);
	return grpc::SslServerCredentials(ssl);
}

/* Credentials of a client channel; @args gets the name to verify. */
std::shared_ptr<grpc::ChannelCredentials>
ChannelCreds(const peer_opts &o, grpc::ChannelArguments *args)
{
	grpc::SslCredentialsOptions ssl;

	if (!o.tls)
		return grpc::InsecureChannelCredentials();
	if (!ReadFile(o.ca, &ssl.pem_root_certs)) {
		fprintf(stderr, "grpc_echo: cannot read %s\n", o.ca);
		return nullptr;
	}
	args->SetSslTargetNameOverride("localhost");
	return grpc::SslCredentials(ssl);
}

/* ---- server ------------------------------------------------------------ */

/*
 * One completion queue and its thread.  @lock orders re-arming against
 * shutdown: no RequestCall() may reach a queue after Shutdown().
 */
struct ServerQueue {
	std::unique_ptr<grpc::ServerCompletionQueue> cq;
	std::mutex lock;
	bool closing = false;
};

/* A posted request slot: waits for a call, answers it, waits again. */
class CallSlot {
public:
	CallSlot(zcpeer::Echo::AsyncService *svc, ServerQueue *q,
		 const std::string *fixed)
		: svc_(svc), q_(q), fixed_(fixed) {}

	/* Posts the slot, unless the queue is closing: it then stays idle. */
	void Arm()
	{
		std::lock_guard<std::mutex> g(q_->lock);

		if (q_->closing)
			return;
		ctx_.emplace();
		writer_.emplace(&*ctx_);
		answered_ = false;
		svc_->RequestCall(&*ctx_, &req_, &*writer_, q_->cq.get(),
				  q_->cq.get(), this);
	}

	/*
	 * Completion of this slot's tag: a call arrived (or, !ok, the server
	 * is shutting down), or its answer went out (or failed: the client
	 * left).  Either way an answered slot is posted again.
	 */
	void Proceed(bool ok)
	{
		if (answered_) {
			Arm();
			return;
		}
		if (!ok)
			return;
		if (fixed_)
			reply_.set_data(*fixed_);
		else
			reply_.mutable_data()->swap(*req_.mutable_data());
		answered_ = true;
		writer_->Finish(reply_, grpc::Status::OK, this);
	}

private:
	zcpeer::Echo::AsyncService *svc_;
	ServerQueue *q_;
	const std::string *fixed_;
	std::optional<grpc::ServerContext> ctx_;
	std::optional<grpc::ServerAsyncResponseWriter<zcpeer::Payload>> writer_;
	zcpeer::Payload req_, reply_;
	bool answered_ = false;
};

void ServeQueue(ServerQueue *q)
{
	void *tag;
	bool ok;

	while (q->cq->Next(&tag, &ok))
		static_cast<CallSlot *>(tag)->Proceed(ok);
}

int Serve(const peer_opts &o)
{
	std::string addr = std::string(o.host ? o.host : "0.0.0.0") + ":" +
			   std::to_string(o.port);
	std::optional<std::string> fixed;
	zcpeer::Echo::AsyncService svc;
	grpc::ServerBuilder builder;
	std::vector<std::unique_ptr<ServerQueue>> queues;
	std::vector<std::unique_ptr<CallSlot>> slots;
	std::vector<std::thread> threads;
	sigset_t sigs;
	int sig;

	/* Blocked before any thread starts, so only sigwait() sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

	if (o.resp)
		fixed.emplace(o.resp, 'g');
	auto creds = ServerCreds(o);
	if (!creds)
		return -ENOENT;
	builder.AddListeningPort(addr, creds);
	builder.SetMaxReceiveMessageSize(-1);
	builder.RegisterService(&svc);
	for (unsigned i = 0; i < o.threads; i++) {
		queues.push_back(std::make_unique<ServerQueue>());
		queues.back()->cq = builder.AddCompletionQueue();
	}
	std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
	if (!server) {
		fprintf(stderr, "grpc_echo: cannot listen on %s\n", addr.c_str());
		return -EADDRINUSE;
	}
	/*
	 * A call that finds no posted slot waits in the server's queue, so
	 * post enough for every call a client keeps in flight.
	 */
	for (auto &q : queues) {
		for (unsigned k = 0; k < kMaxPostedPerQueue / o.threads; k++) {
			slots.push_back(std::make_unique<CallSlot>(
				&svc, q.get(), fixed ? &*fixed : nullptr));
			slots.back()->Arm();
		}
		threads.emplace_back(ServeQueue, q.get());
	}
	fprintf(stderr, "grpc_echo: serving on %s (%s%s)\n", addr.c_str(),
		fixed ? "fixed response" : "echo", o.tls ? ", TLS" : "");

	sigwait(&sigs, &sig);
	for (auto &q : queues) {
		std::lock_guard<std::mutex> g(q->lock);
		q->closing = true;
	}
	server->Shutdown();
	for (auto &q : queues)
		q->cq->Shutdown();
	for (auto &t : threads)
		t.join();
	return 0;
}

/* ---- client ------------------------------------------------------------ */

struct Call {
	zcpeer::Echo::Stub *stub;
	unsigned conn;		/* index of its stub in the thread's */
	uint64_t sent_ns;	/* closed loop: sent; open loop: intended */
	uint64_t issued_ns;	/* open loop: really sent */
	std::optional<grpc::ClientContext> ctx;	/* not reusable: one per call */
	std::unique_ptr<grpc::ClientAsyncResponseReader<zcpeer::Payload>> rpc;
	zcpeer::Payload resp;
	grpc::Status status;
};

struct ClientThread {
	const peer_opts *o;
	const zcpeer::Payload *req;
	std::vector<std::unique_ptr<zcpeer::Echo::Stub>> stubs;
	unsigned index;		/* --rate: picks this thread's seed */
	uint64_t start_ns, end_ns;
	peer_hist hist{};
	bench_ol_counts ol{};	/* --rate */
	int err = 0;
};

void StartCall(Call *c, const zcpeer::Payload &req, grpc::CompletionQueue *cq)
{
	c->ctx.emplace();
	c->rpc = c->stub->AsyncCall(&*c->ctx, req, cq);
	c->rpc->Finish(&c->resp, &c->status, c);
}

/* Next completion within @ns from now (0: only one already there). */
grpc::CompletionQueue::NextStatus WaitEvent(grpc::CompletionQueue &cq,
					    uint64_t ns, void **tag, bool *ok)
{
	/* gpr's monotonic clock is offset from ours: wait relative. */
	return cq.AsyncNext(tag, ok, gpr_time_add(
		gpr_now(GPR_CLOCK_MONOTONIC),
		gpr_time_from_nanos((int64_t)ns, GPR_TIMESPAN)));
}

/* An answered call: 0, or -errno for a failed call or a wrong size. */
int CheckAnswer(const ClientThread *t, const Call *c, bool ok)
{
	if (!ok || !c->status.ok()) {
		fprintf(stderr, "grpc_echo: call failed: %s\n",
			c->status.error_message().c_str());
		return -ECONNRESET;
	}
	if (c->resp.data().size() != t->o->resp) {
		fprintf(stderr, "grpc_echo: response of %zu bytes, expected "
			"%zu (server started with other -r?)\n",
			c->resp.data().size(), t->o->resp);
		return -EPROTO;
	}
	return 0;
}

/*
 * Closed loop: every call goes again when answered, until the end of the
 * window; the calls in flight then finish uncounted, since a completion
 * queue may only be shut down once it holds no pending call.
 */
void RunClosed(ClientThread *t, grpc::CompletionQueue &cq,
	       std::vector<Call> &calls, size_t &inflight)
{
	uint64_t deadline = t->end_ns;
	void *tag;
	bool ok;

	for (auto &c : calls) {
		c.sent_ns = peer_now_ns();
		StartCall(&c, *t->req, &cq);
		inflight++;
	}
	while (inflight) {
		uint64_t now = peer_now_ns();
		auto st = WaitEvent(cq, deadline > now ? deadline - now : 0,
				    &tag, &ok);

		if (st == grpc::CompletionQueue::TIMEOUT) {
			if (deadline != t->end_ns) {
				fprintf(stderr, "grpc_echo: %zu calls still in flight "
					"after the window\n", inflight);
				t->err = -ETIMEDOUT;
				break;
			}
			deadline = t->end_ns + kDrainGuardNs;
			continue;
		}
		if (st != grpc::CompletionQueue::GOT_EVENT)
			break;
		now = peer_now_ns();
		Call *c = static_cast<Call *>(tag);

		inflight--;
		t->err = CheckAnswer(t, c, ok);
		if (t->err)
			break;
		if (now >= t->end_ns) {
			deadline = t->end_ns + kDrainGuardNs;
			continue;
		}
		peer_hist_add(&t->hist, now - c->sent_ns);
		c->sent_ns = now;
		StartCall(c, *t->req, &cq);
		inflight++;
	}
}

/*
 * Open loop (--rate, peer_common.h): calls go out at their intended times
 * on the connections with room (fewer than -d outstanding), round-robin;
 * calls with no room wait and count late.  gRPC's timers have millisecond
 * resolution, so a wait is a completion-queue wait to within a millisecond
 * of the next intended time, then a clock_nanosleep(): answers that arrive
 * meanwhile are timed when it ends, at most one millisecond late.  After
 * the window the calls in flight are waited for, up to kDrainGuardNs.
 */
void RunOpen(ClientThread *t, grpc::CompletionQueue &cq,
	     std::vector<Call> &calls, size_t &inflight)
{
	const peer_opts &o = *t->o;
	std::vector<std::vector<Call *>> idle(t->stubs.size());
	uint64_t now, deadline = t->end_ns + kDrainGuardNs;
	size_t rr = 0;
	peer_sched sched;
	void *tag;
	bool ok;

	for (auto &c : calls)
		idle[c.conn].push_back(&c);
	peer_sched_init(&sched, &o, t->index, t->start_ns, t->end_ns);
	while ((now = peer_now_ns()) < deadline) {
		uint64_t wait;

		/* Everything due goes out while a connection has room. */
		while (peer_sched_due(&sched, now)) {
			Call *c = nullptr;

			for (size_t k = 0; k < idle.size() && !c; k++) {
				auto &room = idle[(rr + k) % idle.size()];

				if (!room.empty()) {
					c = room.back();
					room.pop_back();
					rr = (rr + k + 1) % idle.size();
				}
			}
			if (!c)
				break;
			c->sent_ns = peer_sched_take(&sched, &t->ol);
			c->issued_ns = now;
			StartCall(c, *t->req, &cq);
			inflight++;
		}
		if (!peer_sched_open(&sched) && !inflight)
			break;
		/* Wait for the next intended time, or for room or the end. */
		if (peer_sched_open(&sched) && (double)now < sched.next) {
			wait = (uint64_t)(sched.next - (double)now);
			if (wait <= kMsNs) {
				peer_sleep_until_ns((uint64_t)sched.next);
				wait = 0;
			} else {
				wait -= kMsNs;
			}
		} else {
			wait = deadline - now;
		}
		auto st = WaitEvent(cq, wait, &tag, &ok);

		if (st == grpc::CompletionQueue::TIMEOUT)
			continue;
		if (st != grpc::CompletionQueue::GOT_EVENT)
			break;
		Call *c = static_cast<Call *>(tag);

		inflight--;
		t->err = CheckAnswer(t, c, ok);
		if (t->err)
			break;
		peer_ol_answered(&t->ol, &t->hist, c->sent_ns, c->issued_ns,
				 peer_now_ns());
		idle[c->conn].push_back(c);
	}
	/* Intended times never sent, and calls never answered. */
	peer_sched_finish(&sched, &t->ol);
	t->ol.failed += inflight;
}

void RunClientThread(ClientThread *t)
{
	const peer_opts &o = *t->o;
	grpc::CompletionQueue cq;
	std::vector<Call> calls(t->stubs.size() * o.depth);
	size_t inflight = 0;
	void *tag;
	bool ok;

	for (size_t i = 0; i < calls.size(); i++) {
		calls[i].conn = (unsigned)(i / o.depth);
		calls[i].stub = t->stubs[calls[i].conn].get();
	}
	if (o.rate > 0)
		RunOpen(t, cq, calls, inflight);
	else
		RunClosed(t, cq, calls, inflight);
	/* On error, cancel what is left so the queue drains promptly. */
	for (auto &c : calls)
		if (inflight && c.ctx)
			c.ctx->TryCancel();
	cq.Shutdown();
	while (cq.Next(&tag, &ok))
		;
}

/* A channel of its own (its own TCP connection) to @target, connected;
 * nullptr after printing why not. */
std::shared_ptr<grpc::Channel> OpenChannel(const peer_opts &o,
					   const std::string &target)
{
	grpc::ChannelArguments args;

	/* Without a private pool, equal channels share one connection. */
	args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	args.SetMaxReceiveMessageSize(-1);
	auto creds = ChannelCreds(o, &args);
	if (!creds)
		return nullptr;
	auto ch = grpc::CreateCustomChannel(target, creds, args);
	if (!ch->WaitForConnected(gpr_time_add(
		    gpr_now(GPR_CLOCK_MONOTONIC),
		    gpr_time_from_seconds(5, GPR_TIMESPAN)))) {
		fprintf(stderr, "grpc_echo: cannot connect to %s\n",
			target.c_str());
		return nullptr;
	}
	return ch;
}

/* Opens o.idle channels into @idle, each through one call. */
int OpenIdle(const peer_opts &o, const std::string &target,
	     const zcpeer::Payload &req,
	     std::vector<std::shared_ptr<grpc::Channel>> &idle)
{
	for (unsigned i = 0; i < o.idle; i++) {
		auto ch = OpenChannel(o, target);
		zcpeer::Payload resp;
		grpc::ClientContext ctx;

		if (!ch)
			return -ECONNREFUSED;
		ctx.set_deadline(std::chrono::system_clock::now() +
				 std::chrono::seconds(5));
		grpc::Status st = zcpeer::Echo::NewStub(ch)->Call(&ctx, req, &resp);
		if (!st.ok()) {
			fprintf(stderr, "grpc_echo: idle connection %u: %s\n", i,
				st.error_message().c_str());
			return -ECONNRESET;
		}
		idle.push_back(ch);
	}
	return 0;
}

int RunClient(const peer_opts &o)
{
	std::string target = std::string(o.host) + ":" + std::to_string(o.port);
	std::vector<ClientThread> threads(o.threads);
	std::vector<std::thread> running;
	std::vector<std::shared_ptr<grpc::Channel>> idle;
	zcpeer::Payload req;
	peer_hist total{};
	bench_ol_counts ol{};
	PeerRss rss(o);
	int ret = 0;

	req.set_data(std::string(o.req, 'g'));
	rss.before_kb = peer_rss_sample(&rss);
	ret = OpenIdle(o, target, req, idle);
	if (ret)
		return ret;
	rss.idle_kb = peer_rss_sample(&rss);
	for (unsigned i = 0; i < o.conns; i++) {
		auto ch = OpenChannel(o, target);

		if (!ch)
			return -ECONNREFUSED;
		threads[i % o.threads].stubs.push_back(zcpeer::Echo::NewStub(ch));
	}

	uint64_t start = peer_now_ns();
	uint64_t end = start + (uint64_t)(o.seconds * 1e9);

	for (unsigned i = 0; i < o.threads; i++) {
		ClientThread &t = threads[i];

		t.o = &o;
		t.req = &req;
		t.index = i;
		t.start_ns = start;
		t.end_ns = end;
		running.emplace_back(RunClientThread, &t);
	}
	for (auto &r : running)
		r.join();
	rss.end_kb = peer_rss_sample(&rss);
	for (auto &t : threads) {
		if (t.err && !ret)
			ret = t.err;
		peer_hist_merge(&total, &t.hist);
		bench_ol_counts_add(&ol, &t.ol);
	}
	if (!ret)
		peer_print_result_ol("grpc", &o, (end - start) / 1e9, &total,
				     o.rate > 0 ? &ol : nullptr,
				     o.idle || o.server_pid ? &rss : nullptr);
	return ret;
}

} // namespace

int main(int argc, char **argv)
{
	return peer_main(argc, argv, "grpc_echo", kPort, true,
			 [](const peer_opts *o) { return Serve(*o); },
			 [](const peer_opts *o) { return RunClient(*o); });
}
