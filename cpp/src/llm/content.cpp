// Content post-processing: the model's text -> JSON text.
//
// A leading <think> block and markdown fences are stripped here (cheap views into the
// content), then text::repair_json does the rest: prose around the JSON, comments,
// quotes, commas, cut-off containers. Errors report positions in the raw content.
#include "strings.hpp"
#include "llmbridge/llm/content.hpp"

#include "llmbridge/llm/errors.hpp"
#include "llmbridge/text/fences.hpp"
#include "llmbridge/text/repair.hpp"

namespace llmbridge::llm {
namespace {

using detail::is_space;
using detail::trim;

}  // namespace

std::string_view strip_think_block(std::string_view content) noexcept {
  constexpr std::string_view kOpen = "<think>";
  constexpr std::string_view kClose = "</think>";
  std::string_view s = content;
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  if (s.substr(0, kOpen.size()) != kOpen) return content;
  const auto close = s.find(kClose, kOpen.size());
  if (close == std::string_view::npos) return content;
  return s.substr(close + kClose.size());
}

ContentResult process_content(std::string_view content) {
  ContentResult out;
  const std::string_view raw = trim(content);
  // Every step returns a view into `content`, so offsets map back to it.
  const std::string_view text = trim(text::strip_markdown_fences(trim(strip_think_block(content))));
  if (text.empty()) {
    out.error = std::string(kErrorEmptyModelResponse);
    return out;
  }
  text::RepairOptions options;
  options.collect_repairs = false;  // only whether something changed matters here
  text::RepairResult r = text::repair_json(text, options);
  if (!r.ok) {
    const std::size_t offset = static_cast<std::size_t>(text.data() - content.data());
    out.error = invalid_json_error(r.error + " at position " + std::to_string(offset + r.error_position));
    return out;
  }
  const std::string_view json = trim(r.text(text));
  out.ok = true;
  out.json = std::string(json);
  out.repaired = json != raw;
  out.truncated = r.truncated;
  return out;
}

}  // namespace llmbridge::llm
