// ECMA-262 pattern parser, compiler to a small instruction set, and the Pike VM that
// runs it. The VM keeps one set of program counters per input position and adds each
// counter at most once per position, so a search is O(program x text) steps.
#include "llmbridge/schema/regex.hpp"

#include <algorithm>
#include <map>
#include <string>

namespace llmbridge::schema {

namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxGroupDepth = 200;

// Thrown inside the parser and the compiler, caught by the constructor.
struct Failure {
  Regex::Status status;
  std::string reason;
};

bool is_line_terminator(char32_t c) noexcept {
  return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029;
}

bool is_ascii_word(unsigned char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

using Ranges = std::vector<std::pair<char32_t, char32_t>>;

const Ranges& digit_ranges() {
  static const Ranges r{{'0', '9'}};
  return r;
}
const Ranges& word_ranges() {
  static const Ranges r{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  return r;
}
// ECMA-262 WhiteSpace and LineTerminator.
const Ranges& space_ranges() {
  static const Ranges r{{0x09, 0x0D}, {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680},
                        {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                        {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  return r;
}

void normalize(Ranges& r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& x : r) {
    if (!out.empty() && x.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, x.second);
    } else {
      out.push_back(x);
    }
  }
  r.swap(out);
}

Ranges complement(Ranges r) {
  normalize(r);
  Ranges out;
  char32_t next = 0;
  for (const auto& x : r) {
    if (x.first > next) out.emplace_back(next, x.first - 1);
    next = x.second + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

// The pattern as code points, each with its byte offset (for messages).
struct Source {
  std::u32string cps;
  std::vector<std::size_t> offsets;
};

Source decode(std::string_view s) {
  Source out;
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    char32_t c;
    std::size_t len;
    if (b < 0x80) {
      c = b, len = 1;
    } else if ((b >> 5) == 0x6) {
      c = b & 0x1F, len = 2;
    } else if ((b >> 4) == 0xE) {
      c = b & 0x0F, len = 3;
    } else if ((b >> 3) == 0x1E) {
      c = b & 0x07, len = 4;
    } else {
      throw Failure{Regex::Status::invalid, "pattern is not valid UTF-8"};
    }
    if (i + len > s.size()) throw Failure{Regex::Status::invalid, "pattern is not valid UTF-8"};
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned char cb = static_cast<unsigned char>(s[i + k]);
      if ((cb >> 6) != 0x2) throw Failure{Regex::Status::invalid, "pattern is not valid UTF-8"};
      c = (c << 6) | (cb & 0x3F);
    }
    out.cps.push_back(c);
    out.offsets.push_back(i);
    i += len;
  }
  out.offsets.push_back(s.size());
  return out;
}

struct Ast {
  enum Kind : std::uint8_t { empty, chr, any, cls, cat, alt, repeat, bol, eol, wb, nwb } kind = empty;
  char32_t c = 0;
  std::uint32_t cls_index = 0;
  std::vector<int> kids;
  int min = 0, max = 0;  // repeat; max -1 = unbounded
  bool greedy = true;
};

class Parser {
 public:
  Parser(std::string_view pattern, std::vector<Regex::CharClass>& classes)
      : src_(decode(pattern)), classes_(classes) {}

  // The root node of the whole pattern.
  int parse() {
    const int root = disjunction(0);
    if (i_ < src_.cps.size()) fail("unmatched ')'");  // disjunction stops only at ')'
    return root;
  }
  std::vector<Ast>& nodes() { return nodes_; }

 private:
  Source src_;
  std::size_t i_ = 0;
  std::vector<Ast> nodes_;
  std::vector<Regex::CharClass>& classes_;

  [[noreturn]] void fail(const std::string& what) {
    throw Failure{Regex::Status::invalid, what + " at offset " + std::to_string(src_.offsets[i_])};
  }
  [[noreturn]] void unsupported(const std::string& what) {
    throw Failure{Regex::Status::unsupported, what + " at offset " + std::to_string(src_.offsets[i_])};
  }
  bool at_end() const { return i_ >= src_.cps.size(); }
  char32_t peek(std::size_t ahead = 0) const {
    return i_ + ahead < src_.cps.size() ? src_.cps[i_ + ahead] : char32_t(-1);
  }
  int add(Ast a) {
    nodes_.push_back(std::move(a));
    return int(nodes_.size() - 1);
  }
  int add_class(Ranges r, bool negate) {
    if (negate) r = complement(std::move(r));
    normalize(r);
    Regex::CharClass cc;
    cc.ranges = std::move(r);
    for (const auto& [lo, hi] : cc.ranges)
      for (char32_t c = lo; c <= hi && c < 128; ++c) cc.ascii[c >> 6] |= std::uint64_t(1) << (c & 63);
    classes_.push_back(std::move(cc));
    Ast a;
    a.kind = Ast::cls;
    a.cls_index = std::uint32_t(classes_.size() - 1);
    return add(std::move(a));
  }

  int disjunction(int depth) {
    if (depth > kMaxGroupDepth) fail("groups nested deeper than " + std::to_string(kMaxGroupDepth));
    std::vector<int> alts{alternative(depth)};
    while (peek() == '|') {
      ++i_;
      alts.push_back(alternative(depth));
    }
    if (alts.size() == 1) return alts[0];
    Ast a;
    a.kind = Ast::alt;
    a.kids = std::move(alts);
    return add(std::move(a));
  }

  int alternative(int depth) {
    Ast cat;
    cat.kind = Ast::cat;
    while (!at_end() && peek() != '|' && peek() != ')') {
      int t = term(depth);
      if (t >= 0) cat.kids.push_back(t);
    }
    if (cat.kids.size() == 1) return cat.kids[0];
    return add(std::move(cat));
  }

  static bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

  // {n}, {n,}, {n,m} at i_ ('{'): true and the bounds when it is one; otherwise the
  // brace is a literal (ECMA-262 Annex B) and i_ is unchanged.
  bool braces(int& min, int& max) {
    std::size_t j = i_ + 1;
    auto number = [&](int& out) {
      if (j >= src_.cps.size() || !is_digit(src_.cps[j])) return false;
      long long v = 0;
      while (j < src_.cps.size() && is_digit(src_.cps[j])) {
        v = std::min<long long>(v * 10 + (src_.cps[j] - '0'), 1000000000);
        ++j;
      }
      out = int(v);
      return true;
    };
    if (!number(min)) return false;
    max = min;
    if (j < src_.cps.size() && src_.cps[j] == ',') {
      ++j;
      max = -1;
      if (j < src_.cps.size() && is_digit(src_.cps[j]) && !number(max)) return false;
    }
    if (j >= src_.cps.size() || src_.cps[j] != '}') return false;
    i_ = j + 1;
    if (max != -1 && max < min) fail("numbers out of order in {} quantifier");
    return true;
  }

  // One term: an assertion, or an atom with its quantifier. -1 for nothing (never).
  int term(int depth) {
    const char32_t c = peek();
    if (c == '^' || c == '$') {
      ++i_;
      Ast a;
      a.kind = c == '^' ? Ast::bol : Ast::eol;
      const int node = add(std::move(a));
      if (quantifier_follows()) fail("nothing to repeat");
      return node;
    }
    if (c == '\\' && (peek(1) == 'b' || peek(1) == 'B')) {
      i_ += 2;
      Ast a;
      a.kind = src_.cps[i_ - 1] == 'b' ? Ast::wb : Ast::nwb;
      const int node = add(std::move(a));
      if (quantifier_follows()) fail("nothing to repeat");
      return node;
    }
    if (c == '(' && peek(1) == '?' && (peek(2) == '=' || peek(2) == '!' ||
                                       (peek(2) == '<' && (peek(3) == '=' || peek(3) == '!')))) {
      unsupported("lookaround assertion");
    }
    int atom_node = atom(depth);
    return quantified(atom_node);
  }

  bool quantifier_follows() {
    const char32_t c = peek();
    if (c == '*' || c == '+' || c == '?') return true;
    if (c == '{') {
      const std::size_t save = i_;
      int mn, mx;
      const bool q = braces(mn, mx);
      i_ = save;
      return q;
    }
    return false;
  }

  int quantified(int atom_node) {
    int min, max;
    const char32_t c = peek();
    if (c == '*') {
      min = 0, max = -1, ++i_;
    } else if (c == '+') {
      min = 1, max = -1, ++i_;
    } else if (c == '?') {
      min = 0, max = 1, ++i_;
    } else if (c == '{' && braces(min, max)) {
    } else {
      return atom_node;
    }
    Ast r;
    r.kind = Ast::repeat;
    r.kids = {atom_node};
    r.min = min;
    r.max = max;
    if (peek() == '?') {
      r.greedy = false;
      ++i_;
    }
    if (quantifier_follows()) fail("nothing to repeat");
    return add(std::move(r));
  }

  int literal(char32_t c) {
    Ast a;
    a.kind = Ast::chr;
    a.c = c;
    return add(std::move(a));
  }

  int atom(int depth) {
    const char32_t c = peek();
    switch (c) {
      case '.': {
        ++i_;
        Ast a;
        a.kind = Ast::any;
        return add(std::move(a));
      }
      case '(': {
        ++i_;
        if (peek() == '?') {
          if (peek(1) == ':') {
            i_ += 2;
          } else if (peek(1) == '<') {  // a named group: matched as a plain group
            std::size_t j = i_ + 2;
            while (j < src_.cps.size() && src_.cps[j] != '>') ++j;
            if (j >= src_.cps.size() || j == i_ + 2) fail("invalid group name");
            i_ = j + 1;
          } else {
            fail("invalid group");
          }
        }
        const int inner = disjunction(depth + 1);
        if (peek() != ')') fail("missing ')'");
        ++i_;
        return inner;
      }
      case ')':
        fail("unmatched ')'");
      case '[':
        return char_class();
      case '*':
      case '+':
      case '?':
        fail("nothing to repeat");
      case '{': {
        int mn, mx;
        if (braces(mn, mx)) fail("nothing to repeat");
        ++i_;
        return literal('{');
      }
      case '\\':
        return atom_escape();
      default:
        ++i_;
        return literal(c);
    }
  }

  unsigned hex_value(char32_t c) const {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
  }

  // \uXXXX (with a following \uXXXX low surrogate joined) or \u{...}, i_ just past 'u'.
  // False (i_ unchanged) when not followed by hex digits.
  bool unicode_escape(char32_t& out) {
    if (peek() == '{') {
      std::size_t j = i_ + 1;
      std::uint32_t v = 0;
      while (j < src_.cps.size() && hex_value(src_.cps[j]) < 16) {
        v = v * 16 + hex_value(src_.cps[j]);
        if (v > kMaxCodePoint) fail("\\u{...} beyond U+10FFFF");
        ++j;
      }
      if (j == i_ + 1 || j >= src_.cps.size() || src_.cps[j] != '}') fail("invalid \\u{...} escape");
      i_ = j + 1;
      out = v;
      return true;
    }
    auto four = [&](std::size_t at, std::uint32_t& v) {
      v = 0;
      for (std::size_t k = 0; k < 4; ++k) {
        if (at + k >= src_.cps.size() || hex_value(src_.cps[at + k]) >= 16) return false;
        v = v * 16 + hex_value(src_.cps[at + k]);
      }
      return true;
    };
    std::uint32_t v;
    if (!four(i_, v)) return false;
    i_ += 4;
    std::uint32_t lo;
    if (v >= 0xD800 && v <= 0xDBFF && peek() == '\\' && peek(1) == 'u' && four(i_ + 2, lo) &&
        lo >= 0xDC00 && lo <= 0xDFFF) {
      i_ += 6;
      v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    out = v;
    return true;
  }

  // A character escape after '\' (i_ at the character after the backslash), shared by
  // atoms and classes. Returns true with `out` set for a single character.
  bool character_escape(char32_t& out, bool in_class) {
    const char32_t c = peek();
    switch (c) {
      case 't': ++i_; out = '\t'; return true;
      case 'n': ++i_; out = '\n'; return true;
      case 'v': ++i_; out = '\v'; return true;
      case 'f': ++i_; out = '\f'; return true;
      case 'r': ++i_; out = '\r'; return true;
      case '0':
        if (!is_digit(peek(1))) {
          ++i_;
          out = 0;
          return true;
        }
        if (in_class) fail("octal escape");
        unsupported("backreference");
      case 'c':
        if ((peek(1) >= 'a' && peek(1) <= 'z') || (peek(1) >= 'A' && peek(1) <= 'Z')) {
          out = peek(1) % 32;
          i_ += 2;
          return true;
        }
        fail("invalid \\c escape");
      case 'x': {
        if (hex_value(peek(1)) < 16 && hex_value(peek(2)) < 16) {
          out = hex_value(peek(1)) * 16 + hex_value(peek(2));
          i_ += 3;
          return true;
        }
        fail("invalid \\x escape");
      }
      case 'u':
        ++i_;
        if (unicode_escape(out)) return true;
        --i_;
        fail("invalid \\u escape");
      default:
        break;
    }
    if (is_digit(c)) {
      if (in_class) fail("invalid escape \\" + std::string(1, char(c)) + " in a class");
      unsupported("backreference");
    }
    if (c == 'k') unsupported("named backreference");
    if (c == 'p' || c == 'P') unsupported("Unicode property escape \\" + std::string(1, char(c)));
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      fail("unknown escape \\" + std::string(1, char(c)));
    }
    if (c == char32_t(-1)) fail("pattern ends with a backslash");
    ++i_;
    out = c;  // an identity escape: \. \/ \- \\ ...
    return true;
  }

  // \d \D \w \W \s \S at i_ (the letter): their ranges, or false.
  bool class_escape(Ranges& out, bool& negated) {
    const char32_t c = peek();
    const Ranges* r = nullptr;
    switch (c) {
      case 'd': case 'D': r = &digit_ranges(); break;
      case 'w': case 'W': r = &word_ranges(); break;
      case 's': case 'S': r = &space_ranges(); break;
      default: return false;
    }
    ++i_;
    out = *r;
    negated = c == 'D' || c == 'W' || c == 'S';
    return true;
  }

  int atom_escape() {
    ++i_;  // the backslash
    Ranges r;
    bool negated;
    if (class_escape(r, negated)) return add_class(std::move(r), negated);
    char32_t c;
    character_escape(c, false);
    return literal(c);
  }

  int char_class() {
    ++i_;  // '['
    bool negate = false;
    if (peek() == '^') {
      negate = true;
      ++i_;
    }
    Ranges ranges;
    // One class atom: a character (returns true) or a class escape added to `ranges`.
    auto class_atom = [&](char32_t& out) {
      const char32_t c = peek();
      if (c == char32_t(-1)) fail("missing ']'");
      if (c != '\\') {
        ++i_;
        out = c;
        return true;
      }
      ++i_;
      Ranges esc;
      bool neg;
      if (class_escape(esc, neg)) {
        if (neg) esc = complement(std::move(esc));
        ranges.insert(ranges.end(), esc.begin(), esc.end());
        return false;
      }
      if (peek() == 'b') {
        ++i_;
        out = 0x08;
        return true;
      }
      if (peek() == '-') {
        ++i_;
        out = '-';
        return true;
      }
      character_escape(out, true);
      return true;
    };
    while (peek() != ']') {
      char32_t lo;
      if (!class_atom(lo)) {
        continue;  // \d and friends; a following '-' is a literal (Annex B)
      }
      if (peek() == '-' && peek(1) != ']' && peek(1) != char32_t(-1)) {
        ++i_;
        char32_t hi;
        if (!class_atom(hi)) {
          ranges.emplace_back(lo, lo);  // [a-\d]: a, '-', and the digits
          ranges.emplace_back('-', '-');
          continue;
        }
        if (hi < lo) fail("range out of order in character class");
        ranges.emplace_back(lo, hi);
      } else {
        ranges.emplace_back(lo, lo);
      }
    }
    ++i_;  // ']'
    return add_class(std::move(ranges), negate);
  }
};

class Compiler {
 public:
  Compiler(const std::vector<Ast>& nodes, std::vector<Regex::Inst>& prog) : nodes_(nodes), prog_(prog) {}

  void emit(int n) {
    const Ast& a = nodes_[std::size_t(n)];
    switch (a.kind) {
      case Ast::empty: return;
      case Ast::chr: push({Regex::Op::chr, std::uint32_t(a.c), 0}); return;
      case Ast::any: push({Regex::Op::any, 0, 0}); return;
      case Ast::cls: push({Regex::Op::cls, a.cls_index, 0}); return;
      case Ast::bol: push({Regex::Op::bol, 0, 0}); return;
      case Ast::eol: push({Regex::Op::eol, 0, 0}); return;
      case Ast::wb: push({Regex::Op::word_boundary, 0, 0}); return;
      case Ast::nwb: push({Regex::Op::not_word_boundary, 0, 0}); return;
      case Ast::cat:
        for (int k : a.kids) emit(k);
        return;
      case Ast::alt: {
        std::vector<std::size_t> jumps;
        for (std::size_t k = 0; k < a.kids.size(); ++k) {
          if (k + 1 < a.kids.size()) {
            const std::size_t split = push({Regex::Op::split, 0, 0});
            prog_[split].x = std::uint32_t(prog_.size());
            emit(a.kids[k]);
            jumps.push_back(push({Regex::Op::jmp, 0, 0}));
            prog_[split].y = std::uint32_t(prog_.size());
          } else {
            emit(a.kids[k]);
          }
        }
        for (std::size_t j : jumps) prog_[j].x = std::uint32_t(prog_.size());
        return;
      }
      case Ast::repeat: {
        for (int k = 0; k < a.min; ++k) emit(a.kids[0]);
        if (a.max == -1) {
          const std::size_t split = push({Regex::Op::split, 0, 0});
          emit(a.kids[0]);
          push({Regex::Op::jmp, std::uint32_t(split), 0});
          set_split(split, split + 1, prog_.size(), a.greedy);
          return;
        }
        std::vector<std::size_t> splits;
        for (int k = a.min; k < a.max; ++k) {
          splits.push_back(push({Regex::Op::split, 0, 0}));
          emit(a.kids[0]);
        }
        for (std::size_t s : splits) set_split(s, s + 1, prog_.size(), a.greedy);
        return;
      }
    }
  }

 private:
  const std::vector<Ast>& nodes_;
  std::vector<Regex::Inst>& prog_;

  std::size_t push(Regex::Inst inst) {
    if (prog_.size() >= Regex::kMaxProgram) {
      throw Failure{Regex::Status::invalid, "pattern too large: more than " +
                                                std::to_string(Regex::kMaxProgram) +
                                                " instructions once repetitions are expanded"};
    }
    prog_.push_back(inst);
    return prog_.size() - 1;
  }
  void set_split(std::size_t at, std::size_t body, std::size_t out, bool greedy) {
    prog_[at].x = std::uint32_t(greedy ? body : out);
    prog_[at].y = std::uint32_t(greedy ? out : body);
  }
};

bool starts_with_bol(const std::vector<Ast>& nodes, int n) {
  const Ast& a = nodes[std::size_t(n)];
  switch (a.kind) {
    case Ast::bol: return true;
    case Ast::cat: return !a.kids.empty() && starts_with_bol(nodes, a.kids[0]);
    case Ast::alt:
      return std::all_of(a.kids.begin(), a.kids.end(), [&](int k) { return starts_with_bol(nodes, k); });
    case Ast::repeat: return a.min > 0 && starts_with_bol(nodes, a.kids[0]);
    default: return false;
  }
}

// A set of program counters with O(1) insert, membership and clear (Briggs & Torczon).
struct PcSet {
  std::uint32_t* dense;
  std::uint32_t* sparse;
  std::uint32_t size = 0;
  bool contains(std::uint32_t pc) const noexcept {
    const std::uint32_t k = sparse[pc];
    return k < size && dense[k] == pc;
  }
  void insert(std::uint32_t pc) noexcept {
    sparse[pc] = size;
    dense[size++] = pc;
  }
};

// Per-thread buffers of the VM, grown to the largest program seen, so a search does not
// allocate once warm.
struct VmScratch {
  std::vector<std::uint32_t> buf;
  std::vector<std::uint32_t> stack;
};

VmScratch& vm_scratch() {
  thread_local VmScratch s;
  return s;
}

// The code point at text[pos] (valid UTF-8) and its length.
inline char32_t decode_at(std::string_view text, std::size_t pos, std::size_t& len) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const unsigned char b = p[0];
  if (b < 0x80) {
    len = 1;
    return b;
  }
  if (b < 0xE0) {
    len = 2;
    return char32_t(b & 0x1F) << 6 | (p[1] & 0x3F);
  }
  if (b < 0xF0) {
    len = 3;
    return char32_t(b & 0x0F) << 12 | char32_t(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
  }
  len = 4;
  return char32_t(b & 0x07) << 18 | char32_t(p[1] & 0x3F) << 12 | char32_t(p[2] & 0x3F) << 6 |
         (p[3] & 0x3F);
}

}  // namespace

bool Regex::CharClass::contains(char32_t c) const noexcept {
  if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                             [](char32_t v, const std::pair<char32_t, char32_t>& r) { return v < r.first; });
  return it != ranges.begin() && c <= std::prev(it)->second;
}

Regex::Regex(std::string_view pattern) {
  try {
    Parser parser(pattern, classes_);
    const int root = parser.parse();
    Compiler(parser.nodes(), prog_).emit(root);
    prog_.push_back({Op::match, 0, 0});
    anchored_ = starts_with_bol(parser.nodes(), root);
    build_dfa();
  } catch (const Failure& f) {
    status_ = f.status;
    reason_ = f.reason;
    prog_.clear();
    classes_.clear();
  }
}

void Regex::build_dfa() {
  const std::uint32_t m = std::uint32_t(prog_.size());
  std::vector<std::uint32_t> consuming;
  std::vector<char32_t> cuts{0};
  auto cut = [&](char32_t lo, char32_t hi) {
    cuts.push_back(lo);
    if (hi < kMaxCodePoint) cuts.push_back(hi + 1);
  };
  for (std::uint32_t pc = 0; pc < m; ++pc) {
    const Inst& in = prog_[pc];
    switch (in.op) {
      case Op::word_boundary:
      case Op::not_word_boundary: return;  // needs the next character: the VM's job
      case Op::chr: cut(in.x, in.x); consuming.push_back(pc); break;
      case Op::any:
        for (char32_t t : {char32_t('\n'), char32_t('\r'), char32_t(0x2028), char32_t(0x2029)}) cut(t, t);
        consuming.push_back(pc);
        break;
      case Op::cls:
        for (const auto& [lo, hi] : classes_[in.x].ranges) cut(lo, hi);
        consuming.push_back(pc);
        break;
      default: break;
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  // Bounded construction work: a schema's pattern must not make compiling slow.
  constexpr std::size_t kSignatureBudget = 4u << 20, kClosureBudget = 2u << 20;
  if (cuts.size() * std::max<std::size_t>(consuming.size(), 1) > kSignatureBudget) return;
  auto accepts = [&](std::uint32_t pc, char32_t c) {
    const Inst& in = prog_[pc];
    switch (in.op) {
      case Op::chr: return c == in.x;
      case Op::any: return !is_line_terminator(c);
      default: return classes_[in.x].contains(c);
    }
  };
  // Intervals that every instruction treats alike share a class.
  Dfa d;
  std::map<std::vector<bool>, std::uint16_t> by_signature;
  std::vector<char32_t> representative;
  for (char32_t start : cuts) {
    std::vector<bool> sig(consuming.size());
    for (std::size_t k = 0; k < consuming.size(); ++k) sig[k] = accepts(consuming[k], start);
    auto [it, fresh] = by_signature.emplace(std::move(sig), std::uint16_t(representative.size()));
    if (fresh) representative.push_back(start);
    d.bounds.push_back(start);
    d.interval_class.push_back(it->second);
  }
  d.classes = std::uint32_t(representative.size());
  if (d.classes > 256) return;
  for (char32_t c = 0; c < 128; ++c) {
    const std::size_t k = std::size_t(std::upper_bound(d.bounds.begin(), d.bounds.end(), c) - d.bounds.begin()) - 1;
    d.ascii_class[c] = std::uint8_t(d.interval_class[k]);
  }

  // Subset construction. A state is the set of consuming and $ instructions the threads
  // wait at (the start state is marked apart: ^ holds only there).
  std::vector<std::uint32_t> seen(m, 0);  // == generation: visited in this closure
  std::uint32_t generation = 0;
  std::size_t work = 0;
  std::vector<std::uint32_t> stack;
  auto closure = [&](const std::vector<std::uint32_t>& seeds, bool at_start, bool at_end, bool& matched) {
    ++generation;
    std::vector<std::uint32_t> key;
    stack = seeds;
    matched = false;
    while (!stack.empty()) {
      const std::uint32_t pc = stack.back();
      stack.pop_back();
      if (seen[pc] == generation) continue;
      seen[pc] = generation;
      ++work;
      const Inst& in = prog_[pc];
      switch (in.op) {
        case Op::jmp: stack.push_back(in.x); break;
        case Op::split:
          stack.push_back(in.y);
          stack.push_back(in.x);
          break;
        case Op::bol:
          if (at_start) stack.push_back(pc + 1);
          break;
        case Op::eol:
          if (at_end) {
            stack.push_back(pc + 1);
          } else {
            key.push_back(pc);
          }
          break;
        case Op::match: matched = true; break;
        default: key.push_back(pc); break;
      }
    }
    std::sort(key.begin(), key.end());
    return key;
  };
  std::map<std::vector<std::uint32_t>, std::uint16_t> ids;
  std::vector<std::vector<std::uint32_t>> keys;
  std::vector<bool> start_flags;
  auto intern = [&](std::vector<std::uint32_t> key, bool matched, bool at_start) -> int {
    work += key.size();  // copying and comparing the state's key
    std::vector<std::uint32_t> id_key = key;
    if (at_start) id_key.push_back(UINT32_MAX);
    if (matched) id_key.push_back(UINT32_MAX - 1);
    auto it = ids.find(id_key);
    if (it != ids.end()) return it->second;
    if (keys.size() >= kMaxDfaStates || (keys.size() + 1) * d.classes > kMaxDfaEntries || work > kClosureBudget)
      return -1;
    const std::uint16_t id = std::uint16_t(keys.size());
    ids.emplace(std::move(id_key), id);
    // Accepting now, or at the end of the text (the $ instructions it waits at pass there).
    std::vector<std::uint32_t> eols;
    for (std::uint32_t pc : key)
      if (prog_[pc].op == Op::eol) eols.push_back(pc);
    bool at_end = false;
    if (!eols.empty()) closure(eols, at_start, true, at_end);
    d.accept.push_back(std::uint8_t((matched ? 1 : 0) | (matched || at_end ? 2 : 0)));
    if (key.empty() && !matched) d.dead = id;
    keys.push_back(std::move(key));
    start_flags.push_back(at_start);
    return id;
  };
  bool matched = false;
  std::vector<std::uint32_t> seed{0};
  std::vector<std::uint32_t> key = closure(seed, true, false, matched);
  const int start = intern(std::move(key), matched, true);
  if (start < 0) return;
  d.start = std::uint16_t(start);
  for (std::size_t s = 0; s < keys.size(); ++s) {
    d.next.resize((s + 1) * d.classes, 0);
    if (d.accept[s] & 1) {  // the search stops here: the row is never read
      continue;
    }
    for (std::uint32_t c = 0; c < d.classes; ++c) {
      seed.clear();
      for (std::uint32_t pc : keys[s])
        if (prog_[pc].op != Op::eol && accepts(pc, representative[c])) seed.push_back(pc + 1);
      if (!anchored_) seed.push_back(0);
      key = closure(seed, false, false, matched);
      const int next = intern(std::move(key), matched, false);
      if (next < 0) return;  // too many states: the VM runs this pattern
      d.next[s * d.classes + c] = std::uint16_t(next);
    }
  }
  dfa_ = std::move(d);
}

bool Regex::search_dfa(std::string_view text) const {
  const Dfa& d = dfa_;
  std::uint32_t s = d.start;
  if (d.accept[s] & 1) return true;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    std::uint32_t cls;
    if (p[i] < 0x80) {
      cls = d.ascii_class[p[i]];
      ++i;
    } else {
      std::size_t len;
      const char32_t c = decode_at(text, i, len);
      i += len;
      cls = d.interval_class[std::size_t(std::upper_bound(d.bounds.begin(), d.bounds.end(), c) - d.bounds.begin()) - 1];
    }
    s = d.next[s * d.classes + cls];
    if (d.accept[s] & 1) return true;
    if (s == d.dead) return false;
  }
  return d.accept[s] & 2;
}

bool Regex::search(std::string_view text) const {
  if (status_ != Status::ok) return false;
  if (has_dfa()) return search_dfa(text);
  return search_vm(text);
}

bool Regex::search_vm(std::string_view text) const {
  if (status_ != Status::ok) return false;
  const std::uint32_t m = std::uint32_t(prog_.size());
  VmScratch& s = vm_scratch();
  if (s.buf.size() < 4 * std::size_t(m)) s.buf.resize(4 * std::size_t(m));
  PcSet cur{s.buf.data(), s.buf.data() + m};
  PcSet next{s.buf.data() + 2 * m, s.buf.data() + 3 * m};
  std::vector<std::uint32_t>& stack = s.stack;
  const std::size_t n = text.size();

  // Adds `pc` and every state reachable from it without consuming input at `pos`; true
  // when that reaches a match.
  auto add = [&](PcSet& set, std::uint32_t pc0, std::size_t pos) {
    stack.clear();
    stack.push_back(pc0);
    while (!stack.empty()) {
      const std::uint32_t pc = stack.back();
      stack.pop_back();
      if (set.contains(pc)) continue;
      set.insert(pc);
      const Inst& in = prog_[pc];
      switch (in.op) {
        case Op::jmp: stack.push_back(in.x); break;
        case Op::split:
          stack.push_back(in.y);
          stack.push_back(in.x);
          break;
        case Op::bol:
          if (pos == 0) stack.push_back(pc + 1);
          break;
        case Op::eol:
          if (pos == n) stack.push_back(pc + 1);
          break;
        case Op::word_boundary:
        case Op::not_word_boundary: {
          const bool before = pos > 0 && is_ascii_word(static_cast<unsigned char>(text[pos - 1]));
          const bool after = pos < n && is_ascii_word(static_cast<unsigned char>(text[pos]));
          if ((before != after) == (in.op == Op::word_boundary)) stack.push_back(pc + 1);
          break;
        }
        case Op::match: return true;
        default: break;  // consumes a character: stays in the set for the next step
      }
    }
    return false;
  };

  std::size_t pos = 0;
  for (;;) {
    if (!anchored_ || pos == 0) {
      if (add(cur, 0, pos)) return true;
    }
    if (pos >= n) return false;
    if (cur.size == 0 && anchored_) return false;
    std::size_t len;
    const char32_t c = decode_at(text, pos, len);
    next.size = 0;
    for (std::uint32_t k = 0; k < cur.size; ++k) {
      const std::uint32_t pc = cur.dense[k];
      const Inst& in = prog_[pc];
      bool step;
      switch (in.op) {
        case Op::chr: step = c == in.x; break;
        case Op::any: step = !is_line_terminator(c); break;
        case Op::cls: step = classes_[in.x].contains(c); break;
        default: step = false; break;
      }
      if (step && add(next, pc + 1, pos + len)) return true;
    }
    std::swap(cur, next);
    pos += len;
  }
}

}  // namespace llmbridge::schema
