// Chat templates against jinja2's renderings (../shared/vocab/chat_templates): every
// expected.txt byte for byte, every expected_error.txt message.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "critdim/base.hpp"
#include "critdim/tokenizer.hpp"
#include "test_util.hpp"

namespace critdim::test {
namespace {

using tokenizer::ChatMessage;
using tokenizer::ChatRenderOptions;
using tokenizer::ChatTemplate;

std::string dir() { return shared_dir() + "/vocab/chat_templates"; }

std::vector<std::vector<ChatMessage>> conversations() {
    const auto j = nlohmann::json::parse(read_text_file(dir() + "/conversations.json"));
    std::vector<std::vector<ChatMessage>> out;
    for (const auto& c : j["conversations"]) {
        std::vector<ChatMessage> msgs;
        for (const auto& m : c["messages"]) msgs.push_back({m["role"], m["content"]});
        out.push_back(std::move(msgs));
    }
    return out;
}

TEST(ChatTemplates, EveryFamilyRendersAsJinja2) {
    const auto families = nlohmann::json::parse(read_text_file(dir() + "/families.json"));
    const auto convs = conversations();
    ASSERT_EQ(convs.size(), 3u);
    int renderings = 0, errors = 0;
    for (const auto& [family, info] : families.items()) {
        const ChatTemplate tmpl(read_text_file(dir() + "/" + family + ".jinja"), family + ".jinja");
        ChatRenderOptions opts;
        for (const auto& [k, v] : info["special_tokens"].items()) opts.special_tokens[k] = v;
        for (size_t c = 0; c < convs.size(); ++c) {
            const std::string stem = dir() + "/" + family + "." + std::to_string(c + 1);
            if (std::filesystem::exists(stem + ".expected.txt")) {
                const std::string expected = read_text_file(stem + ".expected.txt");
                try {
                    EXPECT_EQ(tmpl.render(convs[c], opts), expected) << family << " conversation " << c + 1;
                } catch (const std::exception& e) {
                    ADD_FAILURE() << family << " conversation " << c + 1 << " threw: " << e.what();
                }
                ++renderings;
            } else {
                const std::string expected = read_text_file(stem + ".expected_error.txt");
                try {
                    const std::string got = tmpl.render(convs[c], opts);
                    ADD_FAILURE() << family << " conversation " << c + 1 << " rendered instead of failing:\n" << got;
                } catch (const tokenizer::ChatTemplateError& e) {
                    EXPECT_EQ(e.message(), expected) << family << " conversation " << c + 1;
                    EXPECT_NE(std::string(e.what()).find(family + ".jinja"), std::string::npos) << e.what();
                }
                ++errors;
            }
        }
    }
    EXPECT_EQ(renderings, 34);
    EXPECT_EQ(errors, 2);
}

TEST(ChatTemplates, FamiliesAreRecognised) {
    const std::map<std::string, std::string> expected = {
        {"llama3", "llama3"},  {"llama3_1", "llama3"}, {"llama3_2", "llama3"},      {"qwen2_5", "chatml"},
        {"qwen3", "chatml"},   {"gemma2", "gemma"},    {"gemma3", "gemma"},         {"phi3", "phi3"},
        {"phi3_5", "phi3"},    {"mistral_v0_2", "mistral"}, {"mistral_nemo", "mistral"},
        {"deepseek_r1_distill_qwen", "deepseek-r1"}};
    for (const auto& [family, want] : expected)
        EXPECT_EQ(tokenizer::chat_template_family(read_text_file(dir() + "/" + family + ".jinja")), want) << family;
    EXPECT_EQ(tokenizer::chat_template_family("{{ messages[0].content }}"), "");
}

TEST(ChatTemplates, BuiltinsRender) {
    const auto convs = conversations();
    ChatRenderOptions opts;
    opts.special_tokens = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
    for (const std::string family : {"chatml", "llama3", "gemma", "phi3", "mistral", "llama2", "deepseek-r1", "smollm"}) {
        const ChatTemplate tmpl(tokenizer::builtin_chat_template(family), family);
        const std::string out = tmpl.render(convs[1], opts);
        EXPECT_NE(out.find("Name the three primary colours."), std::string::npos) << family << ":\n" << out;
    }
    // The built-in Llama 3 and ChatML templates agree with the real ones on these conversations.
    const auto families = nlohmann::json::parse(read_text_file(dir() + "/families.json"));
    ChatRenderOptions l3;
    for (const auto& [k, v] : families["llama3"]["special_tokens"].items()) l3.special_tokens[k] = v;
    for (const auto& conv : convs)
        EXPECT_EQ(ChatTemplate(tokenizer::builtin_chat_template("llama3")).render(conv, l3),
                  ChatTemplate(read_text_file(dir() + "/llama3.jinja")).render(conv, l3));
    try {
        tokenizer::builtin_chat_template("nonesuch");
        ADD_FAILURE() << "an unknown family was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        EXPECT_NE(std::string(e.what()).find("chatml"), std::string::npos);
    }
}

TEST(ChatTemplates, SyntaxErrorsNameTheLine) {
    try {
        ChatTemplate("line one\n{% if x %}\nno end", "t.jinja");
        ADD_FAILURE() << "parsed an unterminated if";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_NE(std::string(e.what()).find("t.jinja"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("endif"), std::string::npos) << e.what();
    }
    EXPECT_THROW(ChatTemplate("{% macro m() %}{% endmacro %}"), Error);
    EXPECT_THROW(ChatTemplate("{{ 'unterminated }}"), Error);
}

// Fuzz finding (fuzz_jinja): std::stoll / std::stod threw out_of_range on a huge literal.
TEST(ChatTemplates, LiteralsBeyondRangeAreSyntaxErrors) {
    // Jinja has no exponent: a float beyond double's range is a long run of digits.
    for (const std::string& src : {std::string("a\n{{ 99999999999999999999999 }}"), "a\n{{ 1" + std::string(400, '0') + ".5 }}"}) {
        try {
            ChatTemplate(src, "t.jinja");
            ADD_FAILURE() << "accepted " << src;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            EXPECT_NE(std::string(e.what()).find("t.jinja: line 2: "), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("is out of range"), std::string::npos) << e.what();
        }
    }
}

TEST(ChatTemplates, JinjaSemantics) {
    auto render = [](const std::string& src) {
        return ChatTemplate(src).render({}, ChatRenderOptions{});
    };
    EXPECT_EQ(render("{{ [1, 2, 3][::-1] }}|{{ 'abc'[1:] }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 1 / 2 }}"), "[3, 2, 1]|bc|3|2|0.5");
    EXPECT_EQ(render("{% for x in [1, 2, 3] if x != 2 %}{{ loop.index }}{{ x }}{% endfor %}"), "1123");
    EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in [1, 2] %}{% set ns.n = ns.n + x %}{% set y = 5 %}{% endfor %}"
                     "{{ ns.n }}{{ y }}"),
              "3");
    EXPECT_EQ(render("  {% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
    EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif %}"), "ab");
    EXPECT_EQ(render("{{ {'a': [1, 'x'], 'b': none} | tojson }}"), "{\"a\": [1, \"x\"], \"b\": null}");
    EXPECT_EQ(render("{{ 'a b  c'.split() | join('-') }}{{ ' x '.strip() }}{{ undefined_name }}"), "a-b-cx");
    EXPECT_EQ(render("{{ 'yes' if 'b' in 'abc' else 'no' }}{{ none is none }}{{ 1 is string }}"), "yesTrueFalse");
    EXPECT_THROW(render("{{ undefined_name + 'x' }}"), tokenizer::ChatTemplateError);
}

}  // namespace
}  // namespace critdim::test
