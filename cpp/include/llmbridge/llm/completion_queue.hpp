// Where finished calls wait for the thread that asked for them.
//
// The I/O thread pushes results; the waiting side (an asyncio loop) watches fd() and
// drains everything that is ready in one go. The eventfd is written only when the
// queue goes from empty to non-empty, so a burst of N results costs one wake-up.
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>

#include <vector>

#include "llmbridge/llm/embeddings.hpp"
#include "llmbridge/llm/generation.hpp"

namespace llmbridge::llm {

class CompletionQueue {
 public:
  // What finished: a call_llm attempt, a chat/complete result, or a stream that has
  // events ready (its events wait in its StreamChannel).
  enum class Kind { kAttempt, kChat, kStreamReady, kEmbedding };
  struct Item {
    std::uint64_t token = 0;  // the caller's token
    Kind kind = Kind::kAttempt;
    ChatResult result;  // kAttempt: only the Attempt part is used; kStreamReady: unused
    EmbeddingResult embedding;  // kEmbedding only
  };

  CompletionQueue();  // throws std::system_error when no eventfd can be made
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Readable (level-triggered) while results are waiting.
  int fd() const noexcept { return fd_; }
  // Thread-safe.
  void push(std::uint64_t token, Attempt attempt);
  void push(std::uint64_t token, ChatResult result);
  void push_stream_ready(std::uint64_t token);
  void push(std::uint64_t token, EmbeddingResult result);
  // Takes every waiting result and resets the eventfd.
  std::vector<Item> drain();

 private:
  void push_item(Item&& item);
  std::mutex mu_;
  std::vector<Item> items_;
  int fd_ = -1;
};

}  // namespace llmbridge::llm
