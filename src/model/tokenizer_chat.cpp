// Chat prompts in the format of the model's GGUF chat template. Rather than a Jinja
// interpreter, the template is recognized by its family and rendered by code that
// follows that family's published template:
// - ChatML (SmolLM2, Qwen): <|im_start|>role\ncontent<|im_end|>\n per message, with the
//   template's default system message when the conversation has none;
// - Gemma: <start_of_turn>user|model\ncontent<end_of_turn>\n, a system message is
//   prepended to the first user turn, contents are trimmed. The template's leading
//   {{ bos_token }} is left to encode(…, add_bos = true).
#include <string>

#include "tokenizer_impl.h"
#include "turboquant/error.h"

namespace tq {
namespace {

using Messages = std::vector<std::pair<std::string, std::string>>;

// The system prompt a ChatML template inserts when messages[0] is not a system message:
// the literal between "<|im_start|>system\n" and "<|im_end|>" in that branch.
std::string chatml_default_system(const std::string& tpl) {
  if (tpl.find("!= 'system'") == std::string::npos && tpl.find("!= \"system\"") == std::string::npos) return "";
  const std::string open = "<|im_start|>system\n";
  const size_t a = tpl.find(open);
  if (a == std::string::npos) return "";
  const size_t b = tpl.find("<|im_end|>", a + open.size());
  if (b == std::string::npos) return "";
  const std::string text = tpl.substr(a + open.size(), b - a - open.size());
  // A Jinja expression (e.g. "' + message['content'] + '") is not a literal default.
  if (text.find('\'') != std::string::npos || text.find("{{") != std::string::npos) return "";
  return text;
}

std::string render_chatml(const std::string& tpl, const Messages& messages, bool add_generation_prompt) {
  std::string out;
  if (!messages.empty() && messages.front().first != "system") {
    const std::string sys = chatml_default_system(tpl);
    if (!sys.empty()) out += "<|im_start|>system\n" + sys + "<|im_end|>\n";
  }
  for (const auto& [role, content] : messages) out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

std::string render_gemma(const Messages& messages, bool add_generation_prompt) {
  std::string out, prefix;
  size_t first = 0;
  if (!messages.empty() && messages.front().first == "system") {
    prefix = messages.front().second + "\n\n";
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const auto& [role, content] = messages[i];
    if (role == "system") throw Error("Gemma chat format: only the first message may be a system message");
    out += "<start_of_turn>" + std::string(role == "assistant" ? "model" : role) + "\n";
    if (i == first) out += prefix;
    out += trim(content) + "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

std::string Tokenizer::format_chat(const Messages& messages, bool add_generation_prompt) const {
  const std::string& tpl = impl_->chat_template;
  if (tpl.empty()) throw Error("this model has no chat template (tokenizer.chat_template): it is not a chat model; use a plain prompt");
  if (tpl.find("<|im_start|>") != std::string::npos) return render_chatml(tpl, messages, add_generation_prompt);
  if (tpl.find("<start_of_turn>") != std::string::npos) return render_gemma(messages, add_generation_prompt);
  throw Error("unsupported chat template (known: ChatML with <|im_start|>, Gemma with <start_of_turn>)");
}

}  // namespace tq
