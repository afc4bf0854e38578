// Images (images.hpp).
#include "llmbridge/llm/images.hpp"

#include <simdjson.h>

#include <stdexcept>

#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/text/base64.hpp"

namespace llmbridge::llm {
namespace {

namespace dom = simdjson::dom;
using simdjson::SUCCESS;

bool starts(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

std::string sniff_image_mime(std::string_view b) noexcept {
  if (starts(b, "\x89PNG\r\n\x1a\n")) return "image/png";
  if (starts(b, "\xff\xd8\xff")) return "image/jpeg";
  if (starts(b, "GIF87a") || starts(b, "GIF89a")) return "image/gif";
  if (b.size() >= 12 && starts(b, "RIFF") && b.substr(8, 4) == "WEBP") return "image/webp";
  return {};
}

std::string image_data_url(std::string_view bytes, std::string_view mime) {
  std::string out = "data:";
  out.append(mime);
  out += ";base64,";
  out += text::base64_encode(bytes);
  return out;
}

std::string messages_for_ollama(std::string_view messages_json) {
  dom::parser parser;
  dom::array messages;
  if (parser.parse(messages_json.data(), messages_json.size()).get(messages) != SUCCESS)
    return std::string(messages_json);  // checked before: not reached for valid input
  JsonWriter w;
  w.begin_array();
  for (dom::element m : messages) {
    dom::object msg;
    dom::array parts;
    if (m.get(msg) != SUCCESS || msg["content"].get(parts) != SUCCESS) {
      w.raw(simdjson::minify(m));
      continue;
    }
    std::string text;
    std::vector<std::string> images;
    for (dom::element p : parts) {
      std::string_view type;
      p["type"].get(type);
      std::string_view s;
      if (type == "text" && p["text"].get(s) == SUCCESS) {
        if (!text.empty()) text += '\n';
        text.append(s);
      } else if (type == "image_url") {
        std::string_view url;
        if (p["image_url"]["url"].get(url) != SUCCESS) p["image_url"].get(url);
        const auto comma = url.find(',');
        if (!starts(url, "data:") || comma == std::string_view::npos || url.substr(0, comma).find(";base64") == std::string_view::npos)
          throw std::invalid_argument(
              "ollama takes images as data, not URLs: give the image with Image.from_path() or Image.from_bytes()");
        images.emplace_back(url.substr(comma + 1));
      } else {
        throw std::invalid_argument("a content part of type '" + std::string(type.substr(0, 40)) +
                                    "' cannot be sent to ollama (it takes text and images)");
      }
    }
    w.begin_object();
    for (auto field : msg) {
      if (field.key == "content" || field.key == "images") continue;
      w.key(field.key).raw(simdjson::minify(field.value));
    }
    w.key("content").value(text);
    if (!images.empty()) {
      w.key("images").begin_array();
      for (const auto& img : images) w.value(img);
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
  return w.take();
}

}  // namespace llmbridge::llm
