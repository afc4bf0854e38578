// The transfer engine: callers push commands onto a mutex-protected queue and wake the
// I/O thread through an eventfd; the I/O thread owns the multi handle, every easy
// handle and every pending request. It drives libcurl with curl_multi_socket_action
// from an epoll loop (the shape of curl's multi-event.c / hiperfifo.c): libcurl 7.88's
// curl_multi_perform walks every transfer on each call, socket_action only the ones
// whose socket is ready. The only libcurl call made off that thread is creating the
// multi handle, before the thread exists.
#include "llmbridge/http/engine.hpp"

#include "llmbridge/text/ascii.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <optional>

#include <algorithm>
#include <climits>
#include <cmath>
#include <atomic>
#include <cctype>
#include <chrono>
#include <deque>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmbridge/http/ca_bundle.hpp"
#include "llmbridge/http/curl_handles.hpp"

namespace llmbridge::http {

long seconds_to_ms(double seconds, long fallback) noexcept {
  if (!std::isfinite(seconds) || seconds <= 0) return fallback;
  const double ms = std::round(seconds * 1000.0);
  if (ms >= double(LONG_MAX)) return LONG_MAX;
  return ms < 1 ? 1 : static_cast<long>(ms);
}
namespace {

// getpid() is a system call (glibc stopped caching it) and the fork check runs on every
// submit: keep the pid in a variable that a pthread_atfork child handler refreshes.
std::atomic<pid_t> g_pid{0};

void refresh_pid_in_child() { g_pid.store(getpid(), std::memory_order_relaxed); }

pid_t current_pid() noexcept {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, &refresh_pid_in_child); });
    p = getpid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}


using Clock = std::chrono::steady_clock;

// Idle easy handles kept for reuse; more than this are cleaned up when they finish.
constexpr std::size_t kMaxFreeEasyHandles = 256;
// Upper bound on one epoll_wait; wakeups and timers normally end it much sooner.
constexpr long kMaxPollMs = 1000;
constexpr int kMaxEvents = 64;

// Owns a file descriptor (the epoll instance, the wakeup eventfd).
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { reset(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void global_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void invoke(Callback& on_done, Response&& response) noexcept {
  if (!on_done) return;
  try {
    on_done(std::move(response));
  } catch (...) {
    // Nobody to report to on the I/O thread; the engine must keep running.
  }
}

Response error_response(TransportError error, std::string message, Clock::time_point since) {
  Response r;
  r.error = error;
  r.error_message = std::move(message);
  r.elapsed_ms = ms_since(since);
  return r;
}

TransportError classify(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2_STREAM:
      return TransportError::kConnect;
    case CURLE_FILESIZE_EXCEEDED:
      return TransportError::kTooLarge;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    default:
      return TransportError::kOther;
  }
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

using text::trim;

// One request: waiting for its delay, or handed to curl (`easy` set).
struct Transfer {
  RequestId id = 0;
  Request request;
  Callback on_done;
  Clock::time_point accepted;  // when submit() took it
  Clock::time_point started;   // when it was handed to curl
  EasyHandle easy;
  HeaderList header_lines;
  Response response;
  bool too_large = false;
  bool headers_done = false;   // the final header block ended (body or end follows)
  bool resend_refused = false;  // the prereq callback refused a send over max_sends
  // Request::on_body_chunk stopped the transfer: returned false, or threw (message kept).
  bool chunk_stopped = false;
  bool paused = false;  // on_body_chunk asked for a pause; Engine::resume() lifts it
  std::string chunk_exception;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// Called by libcurl right before each time it sends the request: once normally, again
// when it re-sends on a fresh connection after a reused one died. Each send counts
// against the caller's retry budget, so a call never makes more requests than it says.
int on_prereq(void* user, char*, char*, int, int) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request.max_sends > 0 && t->response.sends >= t->request.max_sends) {
    t->resend_refused = true;
    return CURL_PREREQFUNC_ABORT;
  }
  ++t->response.sends;
  return CURL_PREREQFUNC_OK;
}

// Streams go to the caller's chunk function, only for a 2xx final response: anything
// else is an error reply, kept whole in Response::body for the providers to classify.
bool streams_body(Transfer& t) {
  if (!t.request.on_body_chunk) return false;
  long status = 0;
  curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  return status >= 200 && status < 300;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (streams_body(*t)) {
    ChunkAction action = ChunkAction::kAbort;
    try {
      action = t->request.on_body_chunk(std::string_view(data, n));
    } catch (const std::exception& e) {
      // Nothing may escape into libcurl's C frames, not even bad_alloc from this copy.
      try {
        t->chunk_exception = e.what();
      } catch (...) {
      }
    } catch (...) {
      t->chunk_exception = "unknown";  // fits the small-string buffer: cannot throw
    }
    if (action == ChunkAction::kContinue) return n;
    if (action == ChunkAction::kPause) {
      // The piece is taken; stop reading until Engine::resume(). libcurl allows pausing
      // from inside its own write callback.
      t->paused = true;
      curl_easy_pause(t->easy.get(), CURLPAUSE_RECV);
      return n;
    }
    t->chunk_stopped = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  // body.size() never exceeds the limit, so the subtraction cannot wrap.
  if (n > t->request.max_response_bytes - t->response.body.size()) {
    t->too_large = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

// curl hands over one complete header line per call, including every block it
// receives (1xx interim responses, then the final one). A status line starts a new
// block, so only the last block survives.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  std::string_view line(data, n);
  auto& headers = t->response.headers;
  if (line.substr(0, 5) == "HTTP/") {
    headers.clear();
    t->headers_done = false;
    return n;
  }
  if (trim(line).empty()) {
    t->headers_done = true;  // reset by the next status line if this was a 1xx block
    return n;
  }
  if ((line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
    // Obsolete line folding: continues the previous header's value.
    headers.back().value.append(" ").append(trim(line));
    return n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  if (headers.capacity() == 0) headers.reserve(12);  // one allocation for a typical response
  Header h;
  h.name.assign(trim(line.substr(0, colon)));
  for (char& c : h.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  h.value.assign(trim(line.substr(colon + 1)));
  headers.push_back(std::move(h));
  return n;
}

}  // namespace

// True when the environment names a proxy libcurl would use. libcurl looks these up
// (getenv + strdup, five of them) for every transfer unless told the proxy outright;
// without any, the engine says "no proxy" once per request instead.
bool proxy_in_environment() {
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

struct Engine::State {
  explicit State(EngineOptions o) : options(std::move(o)), env_proxy(proxy_in_environment()) {}

  const EngineOptions options;
  const bool env_proxy;  // read when the engine is built, like the rest of its options

  // ---- Shared between callers and the I/O thread; guarded by `mu`. ----
  struct Command {
    enum class Kind { kSubmit, kCancel, kPost, kResume } kind = Kind::kSubmit;
    RequestId id = 0;
    Request request;
    Callback on_done;
    std::function<void()> fn;
    Clock::time_point accepted;
    Clock::time_point due;
  };
  mutable std::mutex mu;
  std::vector<Command> commands;
  RequestId next_id = 1;
  bool started = false;
  bool stopping = false;
  // Created by start_locked(); released by the I/O thread once it has seen `stopping`
  // (after which nobody writes `wake_fd` any more).
  MultiHandle multi;
  FileDescriptor epoll_fd;
  FileDescriptor wake_fd;
  std::thread::id io_thread_id;

  // Written under `mu` by the start; afterwards joined or detached under `join_mu`.
  std::mutex join_mu;
  std::unique_ptr<std::thread> thread;

  std::atomic<std::size_t> pending{0};
  std::atomic<pid_t> owner_pid{0};  // process that started the I/O thread; 0 = not started

  // ---- Owned by the I/O thread only. ----
  struct Timer {
    RequestId id = 0;  // != 0: start this transfer; == 0: run `fn`
    std::function<void()> fn;
  };
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> transfers;
  // Admission: at most options.max_connections transfers are inside libcurl at once;
  // the rest wait here, in order, so the wait for a free connection is not taken out
  // of a request's timeout (libcurl starts that clock when it gets the handle).
  std::deque<RequestId> waiting;
  std::size_t running = 0;  // transfers whose easy handle is in the multi handle
  std::multimap<Clock::time_point, Timer> timers;  // equal keys stay in FIFO order
  std::vector<EasyHandle> free_easy;
  std::optional<Clock::time_point> curl_deadline;  // set by on_timer

  bool inherited() const noexcept {
    const pid_t owner = owner_pid.load(std::memory_order_acquire);
    return owner != 0 && owner != current_pid();
  }

  // Caller holds `mu`. False when the multi handle or the thread cannot be created.
  bool start_locked(const std::shared_ptr<State>& self) {
    if (started) return true;
    global_init_once();
    FileDescriptor ep(::epoll_create1(EPOLL_CLOEXEC));
    FileDescriptor wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!ep || !wake) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake.get();
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) return false;
    MultiHandle m(curl_multi_init());
    if (!m) return false;
    curl_multi_setopt(m.get(), CURLMOPT_SOCKETFUNCTION, &State::on_socket);
    curl_multi_setopt(m.get(), CURLMOPT_SOCKETDATA, static_cast<void*>(this));
    curl_multi_setopt(m.get(), CURLMOPT_TIMERFUNCTION, &State::on_timer);
    curl_multi_setopt(m.get(), CURLMOPT_TIMERDATA, static_cast<void*>(this));
    curl_multi_setopt(m.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_connections);
    curl_multi_setopt(m.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections);
    // Bound the idle keep-alive cache by the same limit.
    curl_multi_setopt(m.get(), CURLMOPT_MAXCONNECTS, std::max(1L, options.max_connections));
    multi = std::move(m);
    epoll_fd = std::move(ep);
    wake_fd = std::move(wake);
    try {
      thread = std::make_unique<std::thread>([self] { self->run(); });
    } catch (...) {
      multi.reset();
      epoll_fd.reset();
      wake_fd.reset();
      return false;
    }
    io_thread_id = thread->get_id();
    owner_pid.store(current_pid(), std::memory_order_release);
    started = true;
    return true;
  }

  // Caller holds `mu`, the thread is started and not stopping.
  void enqueue_locked(Command&& c) {
    const bool was_empty = commands.empty();
    commands.push_back(std::move(c));
    // A non-empty queue has already been signalled since the thread last drained it.
    if (was_empty) wake_locked();
  }

  // Caller holds `mu`; the thread is started and has not seen `stopping` yet.
  void wake_locked() {
    const std::uint64_t one = 1;
    // Fails only with EAGAIN when the counter is saturated: then it is readable anyway.
    [[maybe_unused]] ssize_t n = ::write(wake_fd.get(), &one, sizeof one);
  }

  // ---------------- I/O thread ----------------

  void run() {
    std::vector<Command> batch;
    std::size_t next = 0;  // first command of `batch` not yet applied
    try {
      for (;;) {
        bool stop = false;
        {
          std::lock_guard<std::mutex> lk(mu);
          batch.swap(commands);
          stop = stopping;
        }
        for (next = 0; next < batch.size(); ++next) apply(std::move(batch[next]), stop);
        batch.clear();
        next = 0;
        if (stop) break;
        fire_due_timers();
        if (curl_deadline && *curl_deadline <= Clock::now()) {
          curl_deadline.reset();
          socket_action(CURL_SOCKET_TIMEOUT, 0);
        }
        wait_and_dispatch(static_cast<int>(poll_timeout_ms()));
      }
    } catch (...) {
      // Out of memory or similar: stop taking work and fail everything below.
      // The command being applied when it threw is lost; the rest are completed.
      std::vector<Command> rest;
      if (next < batch.size())
        rest.assign(std::make_move_iterator(batch.begin() + static_cast<long>(next) + 1),
                    std::make_move_iterator(batch.end()));
      {
        std::lock_guard<std::mutex> lk(mu);
        stopping = true;
        for (auto& c : commands) rest.push_back(std::move(c));
        commands.clear();
      }
      for (auto& c : rest) apply(std::move(c), true);
    }
    cancel_everything();
    MultiHandle m;
    FileDescriptor ep;
    FileDescriptor wake;
    {
      std::lock_guard<std::mutex> lk(mu);
      // Submits that raced with the stop were completed on their callers' threads;
      // callbacks run above only saw `stopping` too. Nothing can be queued any more.
      m = std::move(multi);
      ep = std::move(epoll_fd);
      wake = std::move(wake_fd);
    }
    m.reset();  // closes pooled connections; their sockets leave the epoll set with them
  }

  // libcurl tells us which sockets to watch for what. Level-triggered epoll, so a
  // socket curl did not fully drain is reported again. libcurl keeps a per-socket
  // pointer for us (curl_multi_assign) until it reports CURL_POLL_REMOVE: non-null
  // means the socket is in the epoll set already, so a change is one MOD and a new
  // socket one ADD, with no failing call first.
  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void* socketp) {
    auto* self = static_cast<State*>(userp);
    const int ep = self->epoll_fd.get();
    if (what == CURL_POLL_REMOVE) {
      // May fail when curl already closed the socket (closing removes it): fine.
      ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (socketp != nullptr) {
      if (::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);  // the fd was closed and reused meanwhile
      return 0;
    }
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
      ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    curl_multi_assign(self->multi.get(), fd, self);  // any non-null marker
    return 0;
  }

  // libcurl asks to be called back (socket_action with CURL_SOCKET_TIMEOUT) after
  // timeout_ms; -1 cancels. Calling libcurl from here is not allowed, so only record it.
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<State*>(userp);
    if (timeout_ms < 0)
      self->curl_deadline.reset();
    else
      self->curl_deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
  }

  void socket_action(curl_socket_t fd, int flags) {
    int running = 0;
    curl_multi_socket_action(multi.get(), fd, flags, &running);
    collect_finished();
  }

  void wait_and_dispatch(int timeout_ms) {
    epoll_event events[kMaxEvents];
    const int n = ::epoll_wait(epoll_fd.get(), events, kMaxEvents, timeout_ms);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd.get()) {
        std::uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(fd, &count, sizeof count);
        continue;
      }
      const std::uint32_t ev = events[i].events;
      int flags = 0;
      if (ev & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      if (ev & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
      socket_action(fd, flags);
    }
  }

  void apply(Command&& c, bool stop) {
    switch (c.kind) {
      case Command::Kind::kSubmit: {
        if (stop) {
          pending.fetch_sub(1);
          Response r = error_response(TransportError::kCancelled, "engine shut down", c.accepted);
          invoke(c.on_done, std::move(r));
          return;
        }
        auto t = std::make_unique<Transfer>();
        t->id = c.id;
        t->request = std::move(c.request);
        t->on_done = std::move(c.on_done);
        t->accepted = c.accepted;
        Transfer& ref = *t;
        transfers.emplace(c.id, std::move(t));
        if (c.due <= Clock::now())
          admit(ref);
        else
          timers.emplace(c.due, Timer{c.id, {}});
        return;
      }
      case Command::Kind::kCancel: {
        auto it = transfers.find(c.id);
        if (it == transfers.end()) return;
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers.erase(it);
        Response r = error_response(TransportError::kCancelled, "cancelled",
                                    t->easy ? t->started : t->accepted);
        const bool freed = detach_easy(*t);
        deliver(std::move(t), std::move(r));
        if (freed) admit_waiting();
        return;
      }
      case Command::Kind::kPost:
        if (!stop) timers.emplace(c.due, Timer{0, std::move(c.fn)});
        return;
      case Command::Kind::kResume: {
        auto it = transfers.find(c.id);
        if (it == transfers.end() || !it->second->easy || !it->second->paused) return;
        it->second->paused = false;
        // Unpausing may deliver buffered data at once (the chunk callback runs inside).
        curl_easy_pause(it->second->easy.get(), CURLPAUSE_CONT);
        return;
      }
    }
  }

  void fire_due_timers() {
    const auto now = Clock::now();
    while (!timers.empty() && timers.begin()->first <= now) {
      Timer timer = std::move(timers.extract(timers.begin()).mapped());
      if (timer.id != 0) {
        auto it = transfers.find(timer.id);
        // Gone (cancelled) or already started: nothing to do.
        if (it != transfers.end() && !it->second->easy) admit(*it->second);
      } else if (timer.fn) {
        try {
          timer.fn();
        } catch (...) {
          // Same policy as callbacks: the loop must survive.
        }
      }
    }
  }

  long poll_timeout_ms() const {
    std::optional<Clock::time_point> next = curl_deadline;
    if (!timers.empty() && (!next || timers.begin()->first < *next))
      next = timers.begin()->first;
    if (!next) return kMaxPollMs;
    const auto wait = *next - Clock::now();
    // Round up so the loop never wakes just before a timer is due and spins.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return std::clamp<long>(static_cast<long>(ms), 0, kMaxPollMs);
  }

  EasyHandle take_easy() {
    if (!free_easy.empty()) {
      EasyHandle e = std::move(free_easy.back());
      free_easy.pop_back();
      return e;
    }
    return EasyHandle(curl_easy_init());
  }

  void recycle(EasyHandle easy) {
    if (!easy) return;
    curl_easy_reset(easy.get());
    if (free_easy.size() < kMaxFreeEasyHandles) free_easy.push_back(std::move(easy));
  }

  // Takes a running transfer's handle out of curl and back to the free list. True
  // when that freed a connection slot.
  bool detach_easy(Transfer& t) {
    if (!t.easy) return false;
    curl_multi_remove_handle(multi.get(), t.easy.get());
    recycle(std::move(t.easy));
    --running;
    return true;
  }

  bool slot_free() const noexcept {
    return options.max_connections <= 0 ||
           running < static_cast<std::size_t>(options.max_connections);
  }

  // Starts `t` now if a connection slot is free, else queues it behind the others.
  void admit(Transfer& t) {
    if (slot_free() && waiting.empty()) {
      start(t);
    } else {
      waiting.push_back(t.id);
    }
  }

  // A slot freed up: start waiting transfers, oldest first. Ids of transfers cancelled
  // while they waited are skipped.
  void admit_waiting() {
    while (slot_free() && !waiting.empty()) {
      const RequestId id = waiting.front();
      waiting.pop_front();
      auto it = transfers.find(id);
      if (it != transfers.end() && !it->second->easy) start(*it->second);
    }
  }

  CURLcode configure(Transfer& t) {
    CURL* e = t.easy.get();
    const Request& req = t.request;
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption opt, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, value);
    };
    set(CURLOPT_URL, req.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_TCP_NODELAY, 1L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
    set(CURLOPT_TIMEOUT_MS, req.timeout_ms);
    set(CURLOPT_ERRORBUFFER, t.error_buffer);
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_HEADERFUNCTION, &on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_PREREQFUNCTION, &on_prereq);
    set(CURLOPT_PREREQDATA, static_cast<void*>(&t));
    // Every encoding this libcurl decodes (gzip, deflate, and br/zstd when built in):
    // a compressed answer reaches the providers as plain text.
    set(CURLOPT_ACCEPT_ENCODING, "");
    // Refuses early when the server announces a Content-Length over the limit.
    constexpr auto kOffMax = static_cast<std::size_t>(std::numeric_limits<curl_off_t>::max());
    // Not for a stream: its Content-Length (if any) is the consumer's business.
    if (!req.on_body_chunk)
      set(CURLOPT_MAXFILESIZE_LARGE,
          static_cast<curl_off_t>(std::min(req.max_response_bytes, kOffMax)));
    set(CURLOPT_USERAGENT, options.user_agent.c_str());
    set(CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
    // The caller's CA file, else the system's (which may not be where this libcurl was
    // built to look: ca_bundle.hpp).
    const std::string& ca_file = options.ca_file.empty() ? system_ca_bundle() : options.ca_file;
    if (!ca_file.empty()) set(CURLOPT_CAINFO, ca_file.c_str());
    if (!env_proxy) {
      set(CURLOPT_PROXY, "");    // no proxy: skips libcurl's per-transfer environment lookups
      set(CURLOPT_NOPROXY, "");
    }
#if LIBCURL_VERSION_NUM >= 0x075700
    // Do not wait for a threaded DNS lookup when a transfer is aborted (never hang).
    set(CURLOPT_QUICK_EXIT, 1L);
#endif
    if (req.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else {
      // POST and anything else with a body; curl keeps a pointer to request.body,
      // which lives in this Transfer until it completes.
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      set(CURLOPT_POSTFIELDS, req.body.c_str());
      if (req.method != "POST") set(CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    set(CURLOPT_HTTPHEADER, t.header_lines.get());
    return rc;
  }

  // Builds the header list; an empty string on success, else why it failed (the
  // message never quotes a header value: it may be a credential).
  std::string build_headers(Transfer& t) {
    t.header_lines.clear();
    for (const auto& h : t.request.headers) {
      if (h.name.empty() || has_line_break(h.name) || has_line_break(h.value) ||
          h.name.find(':') != std::string::npos)
        return "invalid request header name or value (empty name, ':' or line break)";
      // "Name:" would make curl drop the header; "Name;" sends it with an empty value.
      const std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
      if (!t.header_lines.append(line)) return "out of memory building headers";
    }
    if (!t.header_lines.append("Expect:")) return "out of memory building headers";
    return {};
  }

  void start(Transfer& t) {
    t.started = Clock::now();
    std::string problem = build_headers(t);
    if (problem.empty()) {
      t.easy = take_easy();
      if (!t.easy) {
        problem = "curl_easy_init failed";
      } else if (CURLcode rc = configure(t); rc != CURLE_OK) {
        problem = std::string("could not configure transfer: ") + curl_easy_strerror(rc);
        recycle(std::move(t.easy));
      } else if (CURLMcode mc = curl_multi_add_handle(multi.get(), t.easy.get());
                 mc != CURLM_OK) {
        problem = std::string("could not start transfer: ") + curl_multi_strerror(mc);
        recycle(std::move(t.easy));
      }
    }
    if (problem.empty()) {
      ++running;
      return;
    }
    Response r = error_response(TransportError::kOther, std::move(problem), t.started);
    auto node = transfers.extract(t.id);  // `t` is owned by the node from here on
    deliver(std::move(node.mapped()), std::move(r));
  }

  void collect_finished() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      // `msg` dies with curl_multi_remove_handle: copy what we need first.
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      char* priv = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
      auto* raw = reinterpret_cast<Transfer*>(priv);
      auto node = transfers.extract(raw->id);
      std::unique_ptr<Transfer> t = std::move(node.mapped());
      finish(std::move(t), code);
    }
  }

  void finish(std::unique_ptr<Transfer> t, CURLcode code) {
    Response r = std::move(t->response);
    long status = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
    r.status = status;
    r.error = t->too_large ? TransportError::kTooLarge : classify(code);
    if (t->chunk_stopped) {
      r.error = TransportError::kCancelled;
      r.error_message = t->chunk_exception.empty()
                            ? "transfer aborted: the body chunk callback returned false"
                            : "transfer aborted: the body chunk callback threw: " +
                                  t->chunk_exception;
    } else if (r.error == TransportError::kTooLarge) {
      r.error_message = "response body exceeded max_response_bytes (" +
                        std::to_string(t->request.max_response_bytes) + " bytes)";
    } else if (t->resend_refused) {
      r.error = TransportError::kConnect;
      r.error_message = "the connection closed before any answer (not re-sent: the retry budget "
                        "allows " + std::to_string(t->request.max_sends) +
                        (t->request.max_sends == 1 ? " send)" : " sends)");
    } else if (code == CURLE_OUT_OF_MEMORY && !t->headers_done) {
      // libcurl refuses a response header line over CURL_MAX_HTTP_HEADER (100 KB) with
      // CURLE_OUT_OF_MEMORY; say what was really wrong.
      r.error = TransportError::kConnect;
      r.error_message = "response header too large (a header line over libcurl's 100 KB limit)";
    } else if (r.error != TransportError::kNone) {
      r.error_message = curl_easy_strerror(code);
      if (t->error_buffer[0] != '\0') r.error_message.append(": ").append(t->error_buffer);
    }
    r.elapsed_ms = ms_since(t->started);
    detach_easy(*t);
    deliver(std::move(t), std::move(r));
    admit_waiting();
  }

  void deliver(std::unique_ptr<Transfer> t, Response&& r) {
    Callback on_done = std::move(t->on_done);
    t.reset();  // release the request body etc. before running user code
    pending.fetch_sub(1);
    invoke(on_done, std::move(r));
  }

  void cancel_everything() {
    std::vector<std::unique_ptr<Transfer>> all;
    all.reserve(transfers.size());
    for (auto& entry : transfers) all.push_back(std::move(entry.second));
    transfers.clear();
    waiting.clear();
    timers.clear();  // posted functions are dropped, not run
    for (auto& t : all) detach_easy(*t);
    for (auto& t : all) {
      Response r = error_response(TransportError::kCancelled, "engine shut down", t->accepted);
      deliver(std::move(t), std::move(r));
    }
    free_easy.clear();
  }
};

Engine::Engine(EngineOptions options) : state_(std::make_shared<State>(std::move(options))) {}

Engine::~Engine() {
  if (!state_) return;
  if (state_->inherited()) {
    abandon();
    return;
  }
  shutdown();
  // Destroyed from inside one of its own callbacks: shutdown() could not join, so let
  // the thread finish on its own; it holds its own reference to the state.
  std::lock_guard<std::mutex> lk(state_->join_mu);
  if (state_->thread && state_->thread->joinable()) state_->thread->detach();
}

RequestId Engine::submit(Request request, Callback on_done, long delay_ms) {
  const auto accepted = Clock::now();
  if (!state_ || state_->inherited()) {
    invoke(on_done, error_response(TransportError::kCancelled,
                                   "engine shut down (or inherited across fork)", accepted));
    return 0;
  }
  State& s = *state_;
  std::unique_lock<std::mutex> lk(s.mu);
  const RequestId id = s.next_id++;
  if (s.stopping || !s.start_locked(state_)) {
    const bool stopped = s.stopping;
    lk.unlock();
    invoke(on_done, stopped ? error_response(TransportError::kCancelled, "engine shut down",
                                             accepted)
                            : error_response(TransportError::kOther,
                                             "could not start the engine's I/O thread",
                                             accepted));
    return id;
  }
  State::Command c;
  c.kind = State::Command::Kind::kSubmit;
  c.id = id;
  c.request = std::move(request);
  c.on_done = std::move(on_done);
  c.accepted = accepted;
  c.due = accepted + std::chrono::milliseconds(std::max(0L, delay_ms));
  s.pending.fetch_add(1);
  s.enqueue_locked(std::move(c));
  return id;
}

void Engine::cancel(RequestId id) {
  if (!state_ || state_->inherited()) return;
  State& s = *state_;
  std::lock_guard<std::mutex> lk(s.mu);
  // Not started: nothing was ever submitted. Stopping: shutdown cancels everything.
  if (!s.started || s.stopping || id == 0 || id >= s.next_id) return;
  State::Command c;
  c.kind = State::Command::Kind::kCancel;
  c.id = id;
  s.enqueue_locked(std::move(c));
}

void Engine::resume(RequestId id) {
  if (!state_ || state_->inherited()) return;
  State& s = *state_;
  std::lock_guard<std::mutex> lk(s.mu);
  if (!s.started || s.stopping || id == 0 || id >= s.next_id) return;
  State::Command c;
  c.kind = State::Command::Kind::kResume;
  c.id = id;
  s.enqueue_locked(std::move(c));
}

void Engine::post(std::function<void()> fn, long delay_ms) {
  if (!state_ || state_->inherited() || !fn) return;
  State& s = *state_;
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.stopping || !s.start_locked(state_)) return;
  State::Command c;
  c.kind = State::Command::Kind::kPost;
  c.fn = std::move(fn);
  c.due = Clock::now() + std::chrono::milliseconds(std::max(0L, delay_ms));
  s.enqueue_locked(std::move(c));
}

void Engine::shutdown() {
  if (!state_) return;
  if (state_->inherited()) {
    abandon();
    return;
  }
  State& s = *state_;
  bool on_io_thread = false;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    if (!s.stopping) {
      s.stopping = true;
      if (s.started) s.wake_locked();
    }
    if (!s.started) return;
    on_io_thread = std::this_thread::get_id() == s.io_thread_id;
  }
  // The I/O thread cannot join itself; it leaves its loop after the current callback.
  if (on_io_thread) return;
  std::lock_guard<std::mutex> lk(s.join_mu);
  if (s.thread && s.thread->joinable()) s.thread->join();
}

std::size_t Engine::in_flight() const {
  if (!state_ || state_->inherited()) return 0;
  return state_->pending.load();
}

void Engine::abandon() noexcept {
  if (!state_) return;
  // A forked child has only this thread: the I/O thread, and any lock it held at the
  // fork, do not exist here. Touch nothing; leak the state on purpose.
  static_cast<void>(new std::shared_ptr<State>(std::move(state_)));
}

}  // namespace llmbridge::http
