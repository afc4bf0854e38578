// The regular expressions of JSON Schema's `pattern` and `patternProperties`: the
// ECMA-262 subset schemas use, matched by a Pike VM (a Thompson NFA simulated over code
// points, one set of live states per input position), so a match costs at most
// O(program size x text length) whatever the pattern: no backtracking, no exponential
// blow-up on patterns like ^(a+)+$. Backreferences, lookaround and \p{...} need more
// than an NFA can do: such a pattern compiles as unsupported() and is not checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::schema {

class Regex {
 public:
  // The largest compiled program (instructions). Counted repetition is expanded, so
  // x{1000}{1000} would be a million; it is refused instead.
  static constexpr std::size_t kMaxProgram = 10000;

  enum class Status : std::uint8_t { ok, unsupported, invalid };

  // Compiles an ECMA-262 pattern (UTF-8). Never throws for a bad pattern: status() and
  // reason() say what is wrong ("unsupported" for backreferences, lookaround, \p).
  explicit Regex(std::string_view pattern);

  Status status() const noexcept { return status_; }
  bool ok() const noexcept { return status_ == Status::ok; }
  // Why the pattern is not ok, e.g. "unbalanced parenthesis at offset 3".
  const std::string& reason() const noexcept { return reason_; }
  std::size_t program_size() const noexcept { return prog_.size(); }

  // True when some substring of `text` (valid UTF-8) matches (ECMA-262 RegExp.test
  // without flags: ^ and $ are the ends of the text). False when the pattern is not ok.
  bool search(std::string_view text) const;
  // The same search on the Pike VM alone, whether or not there is a DFA (tests compare
  // the two).
  bool search_vm(std::string_view text) const;

  enum class Op : std::uint8_t { chr, any, cls, split, jmp, match, bol, eol, word_boundary, not_word_boundary };
  struct Inst {
    Op op;
    std::uint32_t x = 0;  // chr: the code point; cls: the class index; split/jmp: a target
    std::uint32_t y = 0;  // split: the second target
  };
  struct CharClass {
    std::vector<std::pair<char32_t, char32_t>> ranges;  // sorted, merged, inclusive
    std::uint64_t ascii[2] = {0, 0};                    // membership of code points < 128
    bool contains(char32_t c) const noexcept;
  };

  // The same automaton as a DFA, built at compile time when it stays small (at most
  // kMaxDfaStates states and kMaxDfaEntries table entries, within a bounded amount of
  // construction work) and the pattern has no \b / \B: one table step per code point.
  // The Pike VM runs the patterns it cannot hold. Immutable after construction, so a
  // Regex is safe to share between threads.
  static constexpr std::size_t kMaxDfaStates = 4096;
  static constexpr std::size_t kMaxDfaEntries = 256 * 1024;
  struct Dfa {
    std::vector<char32_t> bounds;        // sorted starts of the code point intervals
    std::vector<std::uint16_t> interval_class;  // class of each interval
    std::uint8_t ascii_class[128] = {};
    std::uint32_t classes = 0;
    std::vector<std::uint16_t> next;     // state * classes + class -> state
    std::vector<std::uint8_t> accept;    // 1: a match ends here; 2: a match ends here at the end of the text
    std::uint16_t start = 0;
    std::uint16_t dead = 0xFFFF;         // the state with no live thread (anchored patterns)
  };
  bool has_dfa() const noexcept { return !dfa_.next.empty(); }

 private:
  std::vector<Inst> prog_;
  std::vector<CharClass> classes_;
  bool anchored_ = false;  // every match starts at offset 0
  Dfa dfa_;

  void build_dfa();
  bool search_dfa(std::string_view text) const;
  Status status_ = Status::ok;
  std::string reason_;
};

}  // namespace llmbridge::schema
