// eventfd-backed completion queue.
#include "llmbridge/llm/completion_queue.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace llmbridge::llm {

CompletionQueue::CompletionQueue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

CompletionQueue::~CompletionQueue() {
  if (fd_ >= 0) ::close(fd_);
}

void CompletionQueue::push_item(Item&& item) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = items_.empty();
    items_.push_back(std::move(item));
  }
  if (was_empty) {
    const std::uint64_t one = 1;
    // EAGAIN only if the counter is saturated, which still leaves it readable.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
  }
}

void CompletionQueue::push(std::uint64_t token, Attempt attempt) {
  Item item;
  item.token = token;
  item.kind = Kind::kAttempt;
  static_cast<Attempt&>(item.result) = std::move(attempt);
  push_item(std::move(item));
}

void CompletionQueue::push(std::uint64_t token, ChatResult result) {
  Item item;
  item.token = token;
  item.kind = Kind::kChat;
  item.result = std::move(result);
  push_item(std::move(item));
}

void CompletionQueue::push(std::uint64_t token, EmbeddingResult result) {
  Item item;
  item.token = token;
  item.kind = Kind::kEmbedding;
  item.embedding = std::move(result);
  push_item(std::move(item));
}

void CompletionQueue::push_stream_ready(std::uint64_t token) {
  Item item;
  item.token = token;
  item.kind = Kind::kStreamReady;
  push_item(std::move(item));
}

std::vector<CompletionQueue::Item> CompletionQueue::drain() {
  std::vector<Item> out;
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t counter;
  [[maybe_unused]] ssize_t n = ::read(fd_, &counter, sizeof counter);  // EAGAIN when none
  out.swap(items_);
  return out;
}

}  // namespace llmbridge::llm
