// A small Jinja interpreter for chat templates: the subset that real tokenizer_config.json
// templates use, with the environment Hugging Face transformers renders them in
// (trim_blocks, lstrip_blocks, loop controls, raise_exception, tojson). The reference is
// Python's jinja2 3.1: same whitespace handling, scoping (a for body is its own scope,
// namespaces carry values out), truthiness, and str() of values.
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <variant>

#include "critdim/tokenizer.hpp"

namespace critdim::tokenizer {

ChatTemplateError::ChatTemplateError(std::string_view where, std::string message)
    : Error(ErrorKind::input, where, message), message_(std::move(message)) {}

namespace {

// ---------------------------------------------------------------------------------------------
// Values.

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python dicts

struct Value {
    enum class T { undefined, none, boolean, integer, floating, string, list, dict };
    T t = T::undefined;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;                 // string value, or the name an undefined stands for
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    bool is_namespace = false;

    static Value undefined(std::string what) { Value v; v.s = std::move(what); return v; }
    static Value none() { Value v; v.t = T::none; return v; }
    static Value boolean(bool x) { Value v; v.t = T::boolean; v.b = x; return v; }
    static Value integer(int64_t x) { Value v; v.t = T::integer; v.i = x; return v; }
    static Value floating(double x) { Value v; v.t = T::floating; v.f = x; return v; }
    static Value string(std::string x) { Value v; v.t = T::string; v.s = std::move(x); return v; }
    static Value make_list(List x = {}) { Value v; v.t = T::list; v.list = std::make_shared<List>(std::move(x)); return v; }
    static Value make_dict(Dict x = {}) { Value v; v.t = T::dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }

    bool is_undefined() const { return t == T::undefined; }
    bool is_number() const { return t == T::integer || t == T::floating || t == T::boolean; }
    double as_double() const { return t == T::floating ? f : t == T::boolean ? (b ? 1 : 0) : static_cast<double>(i); }
    const Value* find(std::string_view key) const {
        if (t != T::dict) return nullptr;
        for (const auto& [k, v] : *dict)
            if (k == key) return &v;
        return nullptr;
    }
};

[[noreturn]] void fail(const std::string& message) { throw ChatTemplateError("", message); }

bool truthy(const Value& v) {
    switch (v.t) {
        case Value::T::undefined:
        case Value::T::none: return false;
        case Value::T::boolean: return v.b;
        case Value::T::integer: return v.i != 0;
        case Value::T::floating: return v.f != 0;
        case Value::T::string: return !v.s.empty();
        case Value::T::list: return !v.list->empty();
        case Value::T::dict: return v.is_namespace || !v.dict->empty();
    }
    return false;
}

std::string float_repr(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, x);
    std::string s(buf, r.ptr);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}

std::string to_str(const Value& v);

std::string repr(const Value& v) {
    if (v.t != Value::T::string) return to_str(v);
    const bool use_double = v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos;
    const char q = use_double ? '"' : '\'';
    std::string out(1, q);
    for (char c : v.s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == q) out += std::string("\\") + q;
        else out += c;
    }
    return out + q;
}

// Python's str() of a value, as {{ }} prints it.
std::string to_str(const Value& v) {
    switch (v.t) {
        case Value::T::undefined: return "";
        case Value::T::none: return "None";
        case Value::T::boolean: return v.b ? "True" : "False";
        case Value::T::integer: return std::to_string(v.i);
        case Value::T::floating: return float_repr(v.f);
        case Value::T::string: return v.s;
        case Value::T::list: {
            std::string s = "[";
            for (size_t k = 0; k < v.list->size(); ++k) s += (k ? ", " : "") + repr((*v.list)[k]);
            return s + "]";
        }
        case Value::T::dict: {
            if (v.is_namespace) return "<Namespace>";
            std::string s = "{";
            bool first = true;
            for (const auto& [k, x] : *v.dict) {
                if (!first) s += ", ";
                first = false;
                s += repr(Value::string(k)) + ": " + repr(x);
            }
            return s + "}";
        }
    }
    return "";
}

bool equal(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {  // Python: True == 1, 1 == 1.0
        if (a.t == Value::T::floating || b.t == Value::T::floating) return a.as_double() == b.as_double();
        auto as_int = [](const Value& v) { return v.t == Value::T::boolean ? int64_t{v.b} : v.i; };
        return as_int(a) == as_int(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
        case Value::T::undefined:
        case Value::T::none: return true;
        case Value::T::string: return a.s == b.s;
        case Value::T::list: {
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equal((*a.list)[k], (*b.list)[k])) return false;
            return true;
        }
        case Value::T::dict: {
            if (a.dict == b.dict) return true;
            if (a.dict->size() != b.dict->size()) return false;
            for (const auto& [k, x] : *a.dict) {
                const Value* y = b.find(k);
                if (!y || !equal(x, *y)) return false;
            }
            return true;
        }
        default: return false;
    }
}

void json_string(std::string& out, const std::string& s) {
    out += '"';
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (u < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

// json.dumps(x, ensure_ascii=False, indent=indent): ", " and ": " without indent.
void to_json(std::string& out, const Value& v, int indent, int depth) {
    auto newline = [&](int d) {
        out += '\n';
        out.append(static_cast<size_t>(indent * d), ' ');
    };
    switch (v.t) {
        case Value::T::undefined:
        case Value::T::none: out += "null"; return;
        case Value::T::boolean: out += v.b ? "true" : "false"; return;
        case Value::T::integer: out += std::to_string(v.i); return;
        case Value::T::floating: out += float_repr(v.f); return;
        case Value::T::string: json_string(out, v.s); return;
        case Value::T::list: {
            if (v.list->empty()) { out += "[]"; return; }
            out += '[';
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k) out += indent >= 0 ? "," : ", ";
                if (indent >= 0) newline(depth + 1);
                to_json(out, (*v.list)[k], indent, depth + 1);
            }
            if (indent >= 0) newline(depth);
            out += ']';
            return;
        }
        case Value::T::dict: {
            if (v.dict->empty()) { out += "{}"; return; }
            out += '{';
            bool first = true;
            for (const auto& [k, x] : *v.dict) {
                if (!first) out += indent >= 0 ? "," : ", ";
                first = false;
                if (indent >= 0) newline(depth + 1);
                json_string(out, k);
                out += ": ";
                to_json(out, x, indent, depth + 1);
            }
            if (indent >= 0) newline(depth);
            out += '}';
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions: tokens, syntax tree, parser.

struct Tok {
    enum class K { name, string, integer, floating, op, end } k;
    std::string text;
};

std::vector<Tok> lex_expression(std::string_view src, const std::function<void(const std::string&)>& error) {
    std::vector<Tok> toks;
    size_t i = 0;
    while (i < src.size()) {
        const char c = src[i];
        if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t j = i;
            while (j < src.size() && (std::isalnum(static_cast<unsigned char>(src[j])) || src[j] == '_')) ++j;
            toks.push_back({Tok::K::name, std::string(src.substr(i, j - i))});
            i = j;
            continue;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t j = i;
            bool is_float = false;
            while (j < src.size() && (std::isdigit(static_cast<unsigned char>(src[j])) || src[j] == '_')) ++j;
            if (j + 1 < src.size() && src[j] == '.' && std::isdigit(static_cast<unsigned char>(src[j + 1]))) {
                is_float = true;
                ++j;
                while (j < src.size() && std::isdigit(static_cast<unsigned char>(src[j]))) ++j;
            }
            toks.push_back({is_float ? Tok::K::floating : Tok::K::integer, std::string(src.substr(i, j - i))});
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            std::string s;
            size_t j = i + 1;
            while (j < src.size() && src[j] != c) {
                if (src[j] == '\\' && j + 1 < src.size()) {
                    const char e = src[++j];
                    switch (e) {
                        case 'n': s += '\n'; break;
                        case 't': s += '\t'; break;
                        case 'r': s += '\r'; break;
                        case '\\': s += '\\'; break;
                        case '\'': s += '\''; break;
                        case '"': s += '"'; break;
                        case '\n': break;
                        default: s += '\\'; s += e;
                    }
                    ++j;
                    continue;
                }
                s += src[j++];
            }
            if (j >= src.size()) error("unterminated string literal");
            toks.push_back({Tok::K::string, s});
            i = j + 1;
            continue;
        }
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".",
                                    ",", ":", "(", ")", "[", "]", "{", "}", "<", ">", "="};
        bool matched = false;
        for (const char* op : ops) {
            const size_t n = std::char_traits<char>::length(op);
            if (src.substr(i, n) == op) {
                toks.push_back({Tok::K::op, op});
                i += n;
                matched = true;
                break;
            }
        }
        if (!matched) error(std::string("unexpected character '") + c + "'");
    }
    toks.push_back({Tok::K::end, ""});
    return toks;
}

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class K { literal, name, attr, item, slice, call, filter, test, unary, binary, cond, list, dict } k;
    Value literal;
    std::string name;  // name, attribute, filter, test, operator
    std::vector<ExprPtr> args;  // operands / call arguments / list items
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    bool negated = false;  // "is not"
    explicit Expr(K kind) : k(kind) {}
};

class ExprParser {
public:
    ExprParser(std::vector<Tok> toks, std::function<void(const std::string&)> error)
        : toks_(std::move(toks)), error_(std::move(error)) {}

    ExprPtr parse_expression() { return parse_cond(); }
    bool at_end() const { return peek().k == Tok::K::end; }
    const Tok& peek(size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
    bool is_op(const char* op) const { return peek().k == Tok::K::op && peek().text == op; }
    bool is_name(const char* n) const { return peek().k == Tok::K::name && peek().text == n; }
    Tok next() { return toks_[std::min(pos_++, toks_.size() - 1)]; }
    void expect_op(const char* op) {
        if (!is_op(op)) error_(std::string("expected '") + op + "', found '" + peek().text + "'");
        ++pos_;
    }
    std::string expect_name() {
        if (peek().k != Tok::K::name) error_("expected a name, found '" + peek().text + "'");
        return next().text;
    }
    void error(const std::string& m) const { error_(m); }

private:
    ExprPtr make(Expr::K k) { return std::make_unique<Expr>(k); }
    ExprPtr binary(std::string op, ExprPtr l, ExprPtr r) {
        auto e = make(Expr::K::binary);
        e->name = std::move(op);
        e->args.push_back(std::move(l));
        e->args.push_back(std::move(r));
        return e;
    }

    ExprPtr parse_cond() {
        ExprPtr e = parse_or();
        while (is_name("if")) {
            next();
            auto c = make(Expr::K::cond);
            ExprPtr cond = parse_or();
            ExprPtr otherwise;
            if (is_name("else")) {
                next();
                otherwise = parse_cond();
            }
            c->args.push_back(std::move(cond));
            c->args.push_back(std::move(e));
            c->args.push_back(std::move(otherwise));
            e = std::move(c);
        }
        return e;
    }
    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            next();
            e = binary("or", std::move(e), parse_and());
        }
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            next();
            e = binary("and", std::move(e), parse_not());
        }
        return e;
    }
    ExprPtr parse_not() {
        if (is_name("not")) {
            next();
            auto e = make(Expr::K::unary);
            e->name = "not";
            e->args.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        while (true) {
            if (peek().k == Tok::K::op &&
                (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
                 peek().text == "<=" || peek().text == ">=")) {
                std::string op = next().text;
                e = binary(op, std::move(e), parse_math1());
            } else if (is_name("in")) {
                next();
                e = binary("in", std::move(e), parse_math1());
            } else if (is_name("not") && peek(1).k == Tok::K::name && peek(1).text == "in") {
                next();
                next();
                e = binary("not in", std::move(e), parse_math1());
            } else {
                return e;
            }
        }
    }
    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_concat());
        }
        return e;
    }
    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (is_op("~")) {
            next();
            e = binary("~", std::move(e), parse_math2());
        }
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            std::string op = next().text;
            e = binary(op, std::move(e), parse_pow());
        }
        return e;
    }
    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (is_op("**")) {
            next();
            e = binary("**", std::move(e), parse_unary(true));
        }
        return e;
    }
    ExprPtr parse_unary(bool with_filter) {
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            const std::string op = next().text;
            e = make(Expr::K::unary);
            e->name = op;
            e->args.push_back(parse_unary(false));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filters(std::move(e));
        return e;
    }
    ExprPtr parse_primary() {
        const Tok t = next();
        switch (t.k) {
            case Tok::K::string: {
                std::string s = t.text;
                while (peek().k == Tok::K::string) s += next().text;  // adjacent literals join
                auto e = make(Expr::K::literal);
                e->literal = Value::string(s);
                return e;
            }
            case Tok::K::integer: {
                auto e = make(Expr::K::literal);
                std::string digits;
                for (char c : t.text)
                    if (c != '_') digits += c;
                try {
                    e->literal = Value::integer(std::stoll(digits));
                } catch (const std::out_of_range&) {
                    error_("integer literal '" + t.text + "' is out of range");
                }
                return e;
            }
            case Tok::K::floating: {
                auto e = make(Expr::K::literal);
                try {
                    e->literal = Value::floating(std::stod(t.text));
                } catch (const std::out_of_range&) {
                    error_("number literal '" + t.text + "' is out of range");
                }
                return e;
            }
            case Tok::K::name: {
                auto e = make(Expr::K::literal);
                if (t.text == "true" || t.text == "True") e->literal = Value::boolean(true);
                else if (t.text == "false" || t.text == "False") e->literal = Value::boolean(false);
                else if (t.text == "none" || t.text == "None") e->literal = Value::none();
                else {
                    e = make(Expr::K::name);
                    e->name = t.text;
                }
                return e;
            }
            case Tok::K::op: {
                if (t.text == "(") {
                    ExprPtr e = parse_expression();
                    if (is_op(",")) {  // a tuple: treated as a list
                        auto l = make(Expr::K::list);
                        l->args.push_back(std::move(e));
                        while (is_op(",")) {
                            next();
                            if (is_op(")")) break;
                            l->args.push_back(parse_expression());
                        }
                        e = std::move(l);
                    }
                    expect_op(")");
                    return e;
                }
                if (t.text == "[") {
                    auto l = make(Expr::K::list);
                    while (!is_op("]")) {
                        l->args.push_back(parse_expression());
                        if (!is_op(",")) break;
                        next();
                    }
                    expect_op("]");
                    return l;
                }
                if (t.text == "{") {
                    auto d = make(Expr::K::dict);
                    while (!is_op("}")) {
                        d->args.push_back(parse_expression());
                        expect_op(":");
                        d->args.push_back(parse_expression());
                        if (!is_op(",")) break;
                        next();
                    }
                    expect_op("}");
                    return d;
                }
                break;
            }
            case Tok::K::end: error_("unexpected end of expression");
        }
        error_("unexpected '" + t.text + "'");
        return nullptr;
    }
    void parse_call_args(Expr& call) {
        expect_op("(");
        while (!is_op(")")) {
            if (peek().k == Tok::K::name && peek(1).k == Tok::K::op && peek(1).text == "=") {
                std::string key = next().text;
                next();
                call.kwargs.emplace_back(key, parse_expression());
            } else {
                call.args.push_back(parse_expression());
            }
            if (!is_op(",")) break;
            next();
        }
        expect_op(")");
    }
    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            if (is_op(".")) {
                next();
                auto a = make(Expr::K::attr);
                a->name = expect_name();
                a->args.push_back(std::move(e));
                e = std::move(a);
            } else if (is_op("[")) {
                next();
                ExprPtr parts[3];
                int n_colons = 0;
                if (!is_op(":")) parts[0] = parse_expression();
                while (is_op(":") && n_colons < 2) {
                    next();
                    ++n_colons;
                    if (!is_op(":") && !is_op("]")) parts[n_colons] = parse_expression();
                }
                expect_op("]");
                auto s = make(n_colons ? Expr::K::slice : Expr::K::item);
                s->args.push_back(std::move(e));
                for (int k = 0; k < (n_colons ? 3 : 1); ++k) s->args.push_back(std::move(parts[k]));
                e = std::move(s);
            } else if (is_op("(")) {
                auto c = make(Expr::K::call);
                c->args.push_back(std::move(e));
                parse_call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }
    ExprPtr parse_filters(ExprPtr e) {
        while (true) {
            if (is_op("|")) {
                next();
                auto f = make(Expr::K::filter);
                f->name = expect_name();
                f->args.push_back(std::move(e));
                if (is_op("(")) parse_call_args(*f);
                e = std::move(f);
            } else if (is_name("is")) {
                next();
                auto t = make(Expr::K::test);
                if (is_name("not")) {
                    next();
                    t->negated = true;
                }
                t->name = expect_name();
                t->args.push_back(std::move(e));
                if (is_op("(")) {
                    parse_call_args(*t);
                } else if (peek().k == Tok::K::string || peek().k == Tok::K::integer ||
                           (peek().k == Tok::K::name && !is_name("and") && !is_name("or") && !is_name("else") &&
                            !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not"))) {
                    t->args.push_back(parse_primary());  // "is equalto 'x'"
                }
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    std::vector<Tok> toks_;
    size_t pos_ = 0;
    std::function<void(const std::string&)> error_;
};

// ---------------------------------------------------------------------------------------------
// Statements.

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
    enum class K { text, output, if_, for_, set, break_, continue_ } k;
    int line = 0;
    std::string text;                                  // text
    ExprPtr expr;                                      // output, set value, for iterable
    std::vector<std::pair<ExprPtr, Body>> branches;    // if / elif
    Body else_body;                                    // if, for
    std::vector<std::string> targets;                  // for / set target names
    std::string set_attr;                              // set ns.attr
    ExprPtr filter;                                    // for ... if cond
    Body body;                                         // for
    explicit Node(K kind) : k(kind) {}
};

}  // namespace

struct ChatTemplate::Program {
    std::string where;
    Body body;
};

namespace {

// The raw pieces of a template: text, {{ expression }}, {% statement %}.
struct Piece {
    enum class K { text, expr, stmt } k;
    std::string content;
    int line;
};

std::vector<Piece> split_template(std::string src, const std::function<void(int, const std::string&)>& error) {
    // Jinja normalises newlines and drops one trailing newline (keep_trailing_newline=False).
    std::string norm;
    norm.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r' && i + 1 < src.size() && src[i + 1] == '\n') continue;
        norm += src[i];
    }
    if (!norm.empty() && norm.back() == '\n') norm.pop_back();
    src.swap(norm);

    std::vector<Piece> pieces;
    size_t pos = 0;
    bool strip_leading = false, line_starting = true;
    auto line_of = [&](size_t at) { return 1 + static_cast<int>(std::count(src.begin(), src.begin() + at, '\n')); };
    auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (pos <= src.size()) {
        size_t open = pos;
        while (true) {
            open = src.find('{', open);
            if (open == std::string::npos || open + 1 >= src.size()) {
                open = std::string::npos;
                break;
            }
            const char c = src[open + 1];
            if (c == '{' || c == '%' || c == '#') break;
            ++open;
        }
        std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
        if (strip_leading) {
            size_t k = 0;
            while (k < text.size() && is_ws(text[k])) ++k;
            text.erase(0, k);
        }
        if (open == std::string::npos) {
            if (!text.empty()) pieces.push_back({Piece::K::text, text, line_of(pos)});
            break;
        }
        const char kind = src[open + 1];
        const char mod = open + 2 < src.size() ? src[open + 2] : '\0';
        if (mod == '-') {
            while (!text.empty() && is_ws(text.back())) text.pop_back();
        } else if (kind != '{' && mod != '+') {  // lstrip_blocks
            const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
            if (line_start > 0 || line_starting) {
                bool blank = true;
                for (size_t k = line_start; k < text.size(); ++k)
                    if (!is_ws(text[k])) blank = false;
                if (blank) text.erase(line_start);
            }
        }
        if (!text.empty()) pieces.push_back({Piece::K::text, text, line_of(pos)});

        const size_t body_begin = open + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
        size_t close = std::string::npos;
        const char* closer = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        if (kind == '#') {
            close = src.find(closer, body_begin);
        } else {  // skip string literals, which may contain the closer
            char quote = 0;
            for (size_t k = body_begin; k + 1 < src.size(); ++k) {
                const char c = src[k];
                if (quote) {
                    if (c == '\\') ++k;
                    else if (c == quote) quote = 0;
                    continue;
                }
                if (c == '\'' || c == '"') quote = c;
                else if (c == closer[0] && src[k + 1] == closer[1]) {
                    close = k;
                    break;
                }
            }
        }
        if (close == std::string::npos) error(line_of(open), std::string("missing '") + closer + "'");
        size_t body_end = close;
        const bool minus_close = body_end > body_begin && src[body_end - 1] == '-';
        if (minus_close) --body_end;
        const std::string body = src.substr(body_begin, body_end - body_begin);
        if (kind != '#') pieces.push_back({kind == '{' ? Piece::K::expr : Piece::K::stmt, body, line_of(open)});
        pos = close + 2;
        strip_leading = minus_close;
        if (!minus_close && kind != '{' && pos < src.size() && src[pos] == '\n') ++pos;  // trim_blocks
        if (minus_close) {
            while (pos < src.size() && is_ws(src[pos])) ++pos;
            strip_leading = false;
        }
        line_starting = pos > 0 && src[pos - 1] == '\n';
    }
    return pieces;
}

class TemplateParser {
public:
    TemplateParser(std::vector<Piece> pieces, std::string where) : pieces_(std::move(pieces)), where_(std::move(where)) {}

    Body parse_all() {
        Body body = parse_body({});
        if (pos_ < pieces_.size()) fail_at(pieces_[pos_].line, "unexpected '{% " + pieces_[pos_].content + " %}'");
        return body;
    }

private:
    [[noreturn]] void fail_at(int line, const std::string& what) const {
        throw Error(ErrorKind::input, where_, "line " + std::to_string(line) + ": " + what);
    }

    ExprParser expr_parser(const std::string& src, int line) const {
        auto err = [this, line](const std::string& m) { fail_at(line, m); };
        return ExprParser(lex_expression(src, err), err);
    }

    static std::string first_word(const std::string& s) {
        size_t b = 0;
        while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
        size_t e = b;
        while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) || s[e] == '_')) ++e;
        return s.substr(b, e - b);
    }
    static std::string after_word(const std::string& s) {
        size_t b = 0;
        while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
        while (b < s.size() && (std::isalnum(static_cast<unsigned char>(s[b])) || s[b] == '_')) ++b;
        return s.substr(b);
    }

    // Parses until one of the stop keywords (left unconsumed).
    Body parse_body(const std::vector<std::string>& stops) {
        Body body;
        while (pos_ < pieces_.size()) {
            const Piece& p = pieces_[pos_];
            if (p.k == Piece::K::text) {
                auto n = std::make_unique<Node>(Node::K::text);
                n->text = p.content;
                body.push_back(std::move(n));
                ++pos_;
                continue;
            }
            if (p.k == Piece::K::expr) {
                auto n = std::make_unique<Node>(Node::K::output);
                n->line = p.line;
                ExprParser ep = expr_parser(p.content, p.line);
                n->expr = ep.parse_expression();
                if (!ep.at_end()) ep.error("unexpected '" + ep.peek().text + "'");
                body.push_back(std::move(n));
                ++pos_;
                continue;
            }
            const std::string word = first_word(p.content);
            if (std::find(stops.begin(), stops.end(), word) != stops.end()) return body;
            ++pos_;
            if (word == "if") body.push_back(parse_if(p));
            else if (word == "for") body.push_back(parse_for(p));
            else if (word == "set") body.push_back(parse_set(p));
            else if (word == "break") body.push_back(std::make_unique<Node>(Node::K::break_));
            else if (word == "continue") body.push_back(std::make_unique<Node>(Node::K::continue_));
            else fail_at(p.line, "unsupported or unexpected tag '{% " + word + " %}'");
        }
        if (!stops.empty()) fail_at(pieces_.empty() ? 0 : pieces_.back().line, "missing '{% " + stops.back() + " %}'");
        return body;
    }

    std::unique_ptr<Node> parse_if(const Piece& p) {
        auto n = std::make_unique<Node>(Node::K::if_);
        n->line = p.line;
        std::string cond_src = after_word(p.content);
        while (true) {
            ExprParser ep = expr_parser(cond_src, p.line);
            ExprPtr cond = ep.parse_expression();
            if (!ep.at_end()) ep.error("unexpected '" + ep.peek().text + "'");
            Body body = parse_body({"elif", "else", "endif"});
            n->branches.emplace_back(std::move(cond), std::move(body));
            const Piece& stop = pieces_[pos_++];
            const std::string w = first_word(stop.content);
            if (w == "elif") {
                cond_src = after_word(stop.content);
                continue;
            }
            if (w == "else") {
                n->else_body = parse_body({"endif"});
                ++pos_;
            }
            return n;
        }
    }

    std::unique_ptr<Node> parse_for(const Piece& p) {
        auto n = std::make_unique<Node>(Node::K::for_);
        n->line = p.line;
        ExprParser ep = expr_parser(after_word(p.content), p.line);
        n->targets.push_back(ep.expect_name());
        while (ep.is_op(",")) {
            ep.next();
            n->targets.push_back(ep.expect_name());
        }
        if (!ep.is_name("in")) ep.error("expected 'in'");
        ep.next();
        // "for x in xs if cond": the expression parser reads "xs if cond" as a conditional
        // without else, which is exactly the iterable and the loop filter.
        ExprPtr iter = ep.parse_expression();
        if (iter->k == Expr::K::cond && !iter->args[2]) {
            n->filter = std::move(iter->args[0]);
            iter = std::move(iter->args[1]);
        }
        n->expr = std::move(iter);
        if (ep.is_name("recursive")) ep.error("recursive loops are not supported");
        if (!ep.at_end()) ep.error("unexpected '" + ep.peek().text + "'");
        n->body = parse_body({"else", "endfor"});
        if (first_word(pieces_[pos_++].content) == "else") {
            n->else_body = parse_body({"endfor"});
            ++pos_;
        }
        return n;
    }

    std::unique_ptr<Node> parse_set(const Piece& p) {
        auto n = std::make_unique<Node>(Node::K::set);
        n->line = p.line;
        ExprParser ep = expr_parser(after_word(p.content), p.line);
        n->targets.push_back(ep.expect_name());
        if (ep.is_op(".")) {
            ep.next();
            n->set_attr = ep.expect_name();
        }
        if (!ep.is_op("=")) ep.error("block assignments ('{% set x %}...{% endset %}') are not supported");
        ep.next();
        n->expr = ep.parse_expression();
        if (!ep.at_end()) ep.error("unexpected '" + ep.peek().text + "'");
        return n;
    }

private:
    std::vector<Piece> pieces_;
    size_t pos_ = 0;
    std::string where_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation.

enum class Flow { normal, break_, continue_ };

class Renderer {
public:
    Renderer(const std::map<std::string, Value>& globals) : globals_(globals) { scopes_.emplace_back(); }

    std::string out;

    Flow run(const Body& body) {
        for (const auto& n : body) {
            const Flow f = exec(*n);
            if (f != Flow::normal) return f;
        }
        return Flow::normal;
    }

private:
    Flow exec(const Node& n) {
        switch (n.k) {
            case Node::K::text: out += n.text; return Flow::normal;
            case Node::K::output: out += to_str(eval(*n.expr)); return Flow::normal;
            case Node::K::if_:
                for (const auto& [cond, body] : n.branches)
                    if (truthy(eval(*cond))) return run(body);
                return run(n.else_body);
            case Node::K::set: {
                Value v = eval(*n.expr);
                if (n.set_attr.empty()) {
                    scopes_.back()[n.targets[0]] = std::move(v);
                } else {
                    Value ns = lookup(n.targets[0]);
                    if (!ns.is_namespace) fail("cannot assign attribute on non-namespace object");
                    for (auto& [k, x] : *ns.dict)
                        if (k == n.set_attr) {
                            x = std::move(v);
                            return Flow::normal;
                        }
                    ns.dict->emplace_back(n.set_attr, std::move(v));
                }
                return Flow::normal;
            }
            case Node::K::for_: return exec_for(n);
            case Node::K::break_: return Flow::break_;
            case Node::K::continue_: return Flow::continue_;
        }
        return Flow::normal;
    }

    void bind_targets(const Node& n, std::map<std::string, Value>& scope, const Value& item) {
        if (n.targets.size() == 1) {
            scope[n.targets[0]] = item;
            return;
        }
        if (item.t != Value::T::list || item.list->size() != n.targets.size())
            fail("cannot unpack " + std::to_string(n.targets.size()) + " values in a for loop");
        for (size_t k = 0; k < n.targets.size(); ++k) scope[n.targets[k]] = (*item.list)[k];
    }

    Flow exec_for(const Node& n) {
        const Value seq = eval(*n.expr);
        List items = iterate(seq);
        if (n.filter) {
            List kept;
            for (const Value& item : items) {
                scopes_.emplace_back();
                bind_targets(n, scopes_.back(), item);
                const bool keep = truthy(eval(*n.filter));
                scopes_.pop_back();
                if (keep) kept.push_back(item);
            }
            items.swap(kept);
        }
        if (items.empty()) return run(n.else_body);
        const int64_t len = static_cast<int64_t>(items.size());
        for (int64_t k = 0; k < len; ++k) {
            scopes_.emplace_back();
            auto& scope = scopes_.back();
            bind_targets(n, scope, items[k]);
            Dict loop = {{"index0", Value::integer(k)},
                         {"index", Value::integer(k + 1)},
                         {"revindex0", Value::integer(len - k - 1)},
                         {"revindex", Value::integer(len - k)},
                         {"first", Value::boolean(k == 0)},
                         {"last", Value::boolean(k == len - 1)},
                         {"length", Value::integer(len)},
                         {"previtem", k > 0 ? items[k - 1] : Value::undefined("loop.previtem")},
                         {"nextitem", k + 1 < len ? items[k + 1] : Value::undefined("loop.nextitem")}};
            scope["loop"] = Value::make_dict(std::move(loop));
            const Flow f = run(n.body);
            scopes_.pop_back();
            if (f == Flow::break_) break;
        }
        return Flow::normal;
    }

    static List iterate(const Value& v) {
        switch (v.t) {
            case Value::T::list: return *v.list;
            case Value::T::dict: {
                List keys;
                for (const auto& [k, x] : *v.dict) keys.push_back(Value::string(k));
                return keys;
            }
            case Value::T::string: {
                List chars;
                for (size_t k = 0; k < v.s.size();) {
                    const size_t len = std::min(v.s.size() - k, size_t{1} + ((static_cast<unsigned char>(v.s[k]) >= 0xC0) +
                                                                      (static_cast<unsigned char>(v.s[k]) >= 0xE0) +
                                                                      (static_cast<unsigned char>(v.s[k]) >= 0xF0)));
                    chars.push_back(Value::string(v.s.substr(k, len)));
                    k += len;
                }
                return chars;
            }
            case Value::T::undefined: fail("'" + v.s + "' is undefined");
            default: fail("'" + to_str(v) + "' is not iterable");
        }
    }

    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            auto f = it->find(name);
            if (f != it->end()) return f->second;
        }
        auto g = globals_.find(name);
        if (g != globals_.end()) return g->second;
        return Value::undefined(name);
    }

    static Value get_attr(const Value& obj, const std::string& name) {
        if (obj.is_undefined()) fail("'" + obj.s + "' is undefined");
        if (const Value* v = obj.find(name)) return *v;
        return Value::undefined(std::string(obj.t == Value::T::dict ? "dict object" : "object") + "' has no attribute '" + name);
    }

    static int64_t norm_index(int64_t i, size_t size) { return i < 0 ? i + static_cast<int64_t>(size) : i; }

    static Value get_item(const Value& obj, const Value& key) {
        if (obj.is_undefined()) fail("'" + obj.s + "' is undefined");
        if (obj.t == Value::T::dict && key.t == Value::T::string) {
            if (const Value* v = obj.find(key.s)) return *v;
            return Value::undefined("dict object' has no attribute '" + key.s);
        }
        if ((obj.t == Value::T::list || obj.t == Value::T::string) && key.t == Value::T::integer) {
            const size_t size = obj.t == Value::T::list ? obj.list->size() : obj.s.size();
            const int64_t i = norm_index(key.i, size);
            if (i < 0 || i >= static_cast<int64_t>(size)) return Value::undefined("index out of range");
            return obj.t == Value::T::list ? (*obj.list)[static_cast<size_t>(i)]
                                           : Value::string(obj.s.substr(static_cast<size_t>(i), 1));
        }
        return Value::undefined("no item " + to_str(key));
    }

    Value eval_slice(const Expr& e) {
        const Value obj = eval(*e.args[0]);
        auto opt = [&](int k) -> std::optional<int64_t> {
            if (!e.args[k]) return std::nullopt;
            const Value v = eval(*e.args[k]);
            if (v.t == Value::T::none) return std::nullopt;
            if (v.t != Value::T::integer) fail("slice indices must be integers");
            return v.i;
        };
        const std::optional<int64_t> start = opt(1), stop = opt(2), step_opt = opt(3);
        const int64_t step = step_opt.value_or(1);
        if (step == 0) fail("slice step cannot be zero");
        List src;
        if (obj.t == Value::T::list) src = *obj.list;
        else if (obj.t == Value::T::string) src = iterate(obj);
        else fail("'" + to_str(obj) + "' cannot be sliced");
        const int64_t n = static_cast<int64_t>(src.size());
        auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
            if (!v) return dflt;
            int64_t x = *v < 0 ? *v + n : *v;
            if (step > 0) return std::clamp<int64_t>(x, 0, n);
            return std::clamp<int64_t>(x, -1, n - 1);
        };
        const int64_t b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
        List out;
        for (int64_t k = b; step > 0 ? k < en : k > en; k += step) out.push_back(src[static_cast<size_t>(k)]);
        if (obj.t == Value::T::string) {
            std::string s;
            for (const Value& c : out) s += c.s;
            return Value::string(s);
        }
        return Value::make_list(std::move(out));
    }

    static Value arith(const std::string& op, const Value& a, const Value& b) {
        if (a.is_undefined()) fail("'" + a.s + "' is undefined");
        if (b.is_undefined()) fail("'" + b.s + "' is undefined");
        if (op == "+") {
            if (a.t == Value::T::string && b.t == Value::T::string) return Value::string(a.s + b.s);
            if (a.t == Value::T::list && b.t == Value::T::list) {
                List l = *a.list;
                l.insert(l.end(), b.list->begin(), b.list->end());
                return Value::make_list(std::move(l));
            }
        }
        if (!a.is_number() || !b.is_number())
            fail("unsupported operand type(s) for " + op + ": '" + to_str(a) + "' and '" + to_str(b) + "'");
        const bool ints = a.t != Value::T::floating && b.t != Value::T::floating;
        const int64_t ia = a.t == Value::T::boolean ? a.b : a.i, ib = b.t == Value::T::boolean ? b.b : b.i;
        const double fa = a.as_double(), fb = b.as_double();
        if (op == "+") return ints ? Value::integer(ia + ib) : Value::floating(fa + fb);
        if (op == "-") return ints ? Value::integer(ia - ib) : Value::floating(fa - fb);
        if (op == "*") return ints ? Value::integer(ia * ib) : Value::floating(fa * fb);
        if (op == "**") return ints && ib >= 0 ? Value::integer(static_cast<int64_t>(std::pow(fa, fb))) : Value::floating(std::pow(fa, fb));
        if (fb == 0) fail("division by zero");
        if (op == "/") return Value::floating(fa / fb);
        if (op == "//") return ints ? Value::integer(static_cast<int64_t>(std::floor(fa / fb))) : Value::floating(std::floor(fa / fb));
        if (op == "%") {
            if (ints) {
                int64_t r = ia % ib;
                if (r != 0 && ((r < 0) != (ib < 0))) r += ib;
                return Value::integer(r);
            }
            double r = std::fmod(fa, fb);
            if (r != 0 && ((r < 0) != (fb < 0))) r += fb;
            return Value::floating(r);
        }
        fail("unknown operator " + op);
    }

    static bool compare(const std::string& op, const Value& a, const Value& b) {
        if (op == "==") return equal(a, b);
        if (op == "!=") return !equal(a, b);
        int c;
        if (a.is_number() && b.is_number()) c = a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
        else if (a.t == Value::T::string && b.t == Value::T::string) c = a.s.compare(b.s);
        else fail("'" + op + "' not supported between '" + to_str(a) + "' and '" + to_str(b) + "'");
        if (op == "<") return c < 0;
        if (op == ">") return c > 0;
        if (op == "<=") return c <= 0;
        return c >= 0;
    }

    static bool contains(const Value& container, const Value& item) {
        switch (container.t) {
            case Value::T::string:
                if (item.t != Value::T::string) fail("'in <string>' requires string as left operand");
                return container.s.find(item.s) != std::string::npos;
            case Value::T::list:
                for (const Value& v : *container.list)
                    if (equal(v, item)) return true;
                return false;
            case Value::T::dict: return item.t == Value::T::string && container.find(item.s) != nullptr;
            case Value::T::undefined: fail("'" + container.s + "' is undefined");
            default: fail("argument of type '" + to_str(container) + "' is not iterable");
        }
    }

    bool test(const std::string& name, const Value& v, const std::vector<Value>& args) {
        if (name == "defined") return !v.is_undefined();
        if (name == "undefined") return v.is_undefined();
        if (name == "none") return v.t == Value::T::none;
        if (name == "string") return v.t == Value::T::string;
        if (name == "number") return v.t == Value::T::integer || v.t == Value::T::floating;
        if (name == "integer") return v.t == Value::T::integer;
        if (name == "float") return v.t == Value::T::floating;
        if (name == "boolean") return v.t == Value::T::boolean;
        if (name == "true") return v.t == Value::T::boolean && v.b;
        if (name == "false") return v.t == Value::T::boolean && !v.b;
        if (name == "mapping") return v.t == Value::T::dict;
        if (name == "iterable") return v.t == Value::T::list || v.t == Value::T::dict || v.t == Value::T::string;
        if (name == "sequence") return v.t == Value::T::list || v.t == Value::T::dict || v.t == Value::T::string;
        if (name == "odd" || name == "even") {
            if (v.t != Value::T::integer) fail("test '" + name + "' needs an integer");
            return (v.i % 2 != 0) == (name == "odd");
        }
        if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
            if (args.empty()) fail("test '" + name + "' needs an argument");
            return equal(v, args[0]);
        }
        if (name == "in") {
            if (args.empty()) fail("test 'in' needs an argument");
            return contains(args[0], v);
        }
        fail("no test named '" + name + "'");
    }

    Value filter(const std::string& name, const Value& v, const std::vector<Value>& args,
                 const std::map<std::string, Value>& kwargs) {
        auto arg = [&](size_t k, const char* key) -> const Value* {
            if (k < args.size()) return &args[k];
            auto it = kwargs.find(key);
            return it == kwargs.end() ? nullptr : &it->second;
        };
        if (name == "trim") {
            if (v.t != Value::T::string) return Value::string(to_str(v));
            const auto b = v.s.find_first_not_of(" \t\n\r\f\v");
            if (b == std::string::npos) return Value::string("");
            return Value::string(v.s.substr(b, v.s.find_last_not_of(" \t\n\r\f\v") - b + 1));
        }
        if (name == "length" || name == "count") {
            if (v.t == Value::T::string) return Value::integer(static_cast<int64_t>(iterate(v).size()));
            if (v.t == Value::T::list) return Value::integer(static_cast<int64_t>(v.list->size()));
            if (v.t == Value::T::dict) return Value::integer(static_cast<int64_t>(v.dict->size()));
            if (v.is_undefined()) return Value::integer(0);
            fail("object of type '" + to_str(v) + "' has no len()");
        }
        if (name == "string") return Value::string(to_str(v));
        if (name == "list") return Value::make_list(iterate(v));
        if (name == "lower" || name == "upper") {
            std::string s = to_str(v);
            for (char& c : s) c = static_cast<char>(name == "lower" ? std::tolower(static_cast<unsigned char>(c))
                                                                    : std::toupper(static_cast<unsigned char>(c)));
            return Value::string(s);
        }
        if (name == "first" || name == "last") {
            const List l = iterate(v);
            if (l.empty()) return Value::undefined("no first item");
            return name == "first" ? l.front() : l.back();
        }
        if (name == "default" || name == "d") {
            if (!v.is_undefined()) return v;
            const Value* d = arg(0, "default_value");
            return d ? *d : Value::string("");
        }
        if (name == "join") {
            const Value* sep = arg(0, "d");
            std::string s;
            bool first = true;
            for (const Value& x : iterate(v)) {
                if (!first && sep) s += to_str(*sep);
                first = false;
                s += to_str(x);
            }
            return Value::string(s);
        }
        if (name == "items") {
            if (v.t != Value::T::dict) fail("items filter needs a mapping");
            List l;
            for (const auto& [k, x] : *v.dict) l.push_back(Value::make_list({Value::string(k), x}));
            return Value::make_list(std::move(l));
        }
        if (name == "tojson") {
            const Value* indent = arg(0, "indent");
            std::string s;
            to_json(s, v, indent && indent->t == Value::T::integer ? static_cast<int>(indent->i) : -1, 0);
            return Value::string(s);
        }
        if (name == "select" || name == "reject") {
            List l;
            const std::string tname = args.empty() ? "" : to_str(args[0]);
            const std::vector<Value> targs(args.size() > 1 ? args.begin() + 1 : args.end(), args.end());
            for (const Value& x : iterate(v)) {
                const bool ok = tname.empty() ? truthy(x) : test(tname, x, targs);
                if (ok == (name == "select")) l.push_back(x);
            }
            return Value::make_list(std::move(l));
        }
        if (name == "selectattr" || name == "rejectattr") {
            if (args.empty()) fail(name + " needs an attribute name");
            const std::string attr = to_str(args[0]);
            const std::string tname = args.size() > 1 ? to_str(args[1]) : "";
            const std::vector<Value> targs(args.size() > 2 ? args.begin() + 2 : args.end(), args.end());
            List l;
            for (const Value& x : iterate(v)) {
                const Value* a = x.find(attr);
                const Value av = a ? *a : Value::undefined(attr);
                const bool ok = tname.empty() ? truthy(av) : test(tname, av, targs);
                if (ok == (name == "selectattr")) l.push_back(x);
            }
            return Value::make_list(std::move(l));
        }
        if (name == "replace") {
            if (args.size() < 2) fail("replace needs two arguments");
            std::string s = to_str(v);
            const std::string from = to_str(args[0]), to = to_str(args[1]);
            if (from.empty()) return Value::string(s);
            std::string r;
            size_t p = 0, q;
            while ((q = s.find(from, p)) != std::string::npos) {
                r += s.substr(p, q - p) + to;
                p = q + from.size();
            }
            return Value::string(r + s.substr(p));
        }
        if (name == "int") return Value::integer(v.is_number() ? static_cast<int64_t>(v.as_double()) : std::atoll(to_str(v).c_str()));
        if (name == "abs") return v.t == Value::T::floating ? Value::floating(std::fabs(v.f)) : Value::integer(std::llabs(v.i));
        fail("no filter named '" + name + "'");
    }

    static std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
        size_t b = 0, e = s.size();
        if (left) while (b < e && chars.find(s[b]) != std::string::npos) ++b;
        if (right) while (e > b && chars.find(s[e - 1]) != std::string::npos) --e;
        return s.substr(b, e - b);
    }

    Value call_method(const Value& obj, const std::string& name, const std::vector<Value>& args) {
        if (obj.t == Value::T::string) {
            const std::string& s = obj.s;
            const std::string ws = " \t\n\r\f\v";
            if (name == "strip" || name == "lstrip" || name == "rstrip") {
                const std::string chars = args.empty() || args[0].t == Value::T::none ? ws : to_str(args[0]);
                return Value::string(strip_chars(s, chars, name != "rstrip", name != "lstrip"));
            }
            if (name == "startswith" || name == "endswith") {
                if (args.empty()) fail(name + " needs an argument");
                const std::string p = to_str(args[0]);
                if (p.size() > s.size()) return Value::boolean(false);
                return Value::boolean(name == "startswith" ? s.compare(0, p.size(), p) == 0
                                                           : s.compare(s.size() - p.size(), p.size(), p) == 0);
            }
            if (name == "split") {
                List parts;
                if (args.empty() || args[0].t == Value::T::none) {
                    size_t p = 0;
                    while (true) {
                        p = s.find_first_not_of(ws, p);
                        if (p == std::string::npos) break;
                        const size_t q = s.find_first_of(ws, p);
                        parts.push_back(Value::string(s.substr(p, q == std::string::npos ? std::string::npos : q - p)));
                        if (q == std::string::npos) break;
                        p = q;
                    }
                } else {
                    const std::string sep = to_str(args[0]);
                    if (sep.empty()) fail("empty separator");
                    size_t p = 0, q;
                    while ((q = s.find(sep, p)) != std::string::npos) {
                        parts.push_back(Value::string(s.substr(p, q - p)));
                        p = q + sep.size();
                    }
                    parts.push_back(Value::string(s.substr(p)));
                }
                return Value::make_list(std::move(parts));
            }
            if (name == "upper" || name == "lower") return filter(name, obj, {}, {});
            if (name == "replace") return filter("replace", obj, args, {});
            if (name == "title" || name == "capitalize") {
                std::string r = s;
                bool start = true;
                for (char& c : r) {
                    const auto u = static_cast<unsigned char>(c);
                    c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
                    start = name == "title" ? !std::isalpha(u) : false;
                }
                return Value::string(r);
            }
        }
        if (obj.t == Value::T::dict) {
            if (name == "items") return filter("items", obj, {}, {});
            if (name == "keys") return Value::make_list(iterate(obj));
            if (name == "values") {
                List l;
                for (const auto& [k, x] : *obj.dict) l.push_back(x);
                return Value::make_list(std::move(l));
            }
            if (name == "get") {
                if (args.empty()) fail("get needs a key");
                if (const Value* x = obj.find(to_str(args[0]))) return *x;
                return args.size() > 1 ? args[1] : Value::none();
            }
        }
        if (obj.is_undefined()) fail("'" + obj.s + "' is undefined");
        fail("object has no method '" + name + "'");
    }

    Value eval_call(const Expr& e) {
        std::vector<Value> args;
        for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
        std::map<std::string, Value> kwargs;
        for (const auto& [key, x] : e.kwargs) kwargs[key] = eval(*x);
        const Expr& callee = *e.args[0];
        if (callee.k == Expr::K::attr) return call_method(eval(*callee.args[0]), callee.name, args);
        if (callee.k == Expr::K::name) {
            if (lookup(callee.name).is_undefined() || callee.name == "raise_exception" || callee.name == "namespace") {
                if (callee.name == "raise_exception") throw ChatTemplateError("", args.empty() ? "" : to_str(args[0]));
                if (callee.name == "namespace") {
                    Value ns = Value::make_dict();
                    ns.is_namespace = true;
                    for (auto& [k, x] : kwargs) ns.dict->emplace_back(k, x);
                    return ns;
                }
                if (callee.name == "range") {
                    int64_t start = 0, stop = 0, step = 1;
                    if (args.size() == 1) stop = args[0].i;
                    else if (args.size() >= 2) start = args[0].i, stop = args[1].i;
                    if (args.size() == 3) step = args[2].i;
                    if (step == 0) fail("range() arg 3 must not be zero");
                    List l;
                    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) l.push_back(Value::integer(k));
                    return Value::make_list(std::move(l));
                }
                fail("'" + callee.name + "' is undefined");
            }
        }
        fail("object is not callable");
    }

    Value eval(const Expr& e) {
        switch (e.k) {
            case Expr::K::literal: return e.literal;
            case Expr::K::name: return lookup(e.name);
            case Expr::K::attr: return get_attr(eval(*e.args[0]), e.name);
            case Expr::K::item: return get_item(eval(*e.args[0]), eval(*e.args[1]));
            case Expr::K::slice: return eval_slice(e);
            case Expr::K::call: return eval_call(e);
            case Expr::K::list: {
                List l;
                for (const auto& x : e.args) l.push_back(eval(*x));
                return Value::make_list(std::move(l));
            }
            case Expr::K::dict: {
                Dict d;
                for (size_t k = 0; k + 1 < e.args.size(); k += 2) d.emplace_back(to_str(eval(*e.args[k])), eval(*e.args[k + 1]));
                return Value::make_dict(std::move(d));
            }
            case Expr::K::filter: {
                std::vector<Value> args;
                for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
                std::map<std::string, Value> kwargs;
                for (const auto& [key, x] : e.kwargs) kwargs[key] = eval(*x);
                return filter(e.name, eval(*e.args[0]), args, kwargs);
            }
            case Expr::K::test: {
                std::vector<Value> args;
                for (size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
                return Value::boolean(test(e.name, eval(*e.args[0]), args) != e.negated);
            }
            case Expr::K::unary: {
                const Value v = eval(*e.args[0]);
                if (e.name == "not") return Value::boolean(!truthy(v));
                if (e.name == "-") return arith("-", Value::integer(0), v);
                return v;
            }
            case Expr::K::cond: {
                if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
                return e.args[2] ? eval(*e.args[2]) : Value::undefined("conditional");
            }
            case Expr::K::binary: {
                const std::string& op = e.name;
                if (op == "and") {
                    Value a = eval(*e.args[0]);
                    return truthy(a) ? eval(*e.args[1]) : a;
                }
                if (op == "or") {
                    Value a = eval(*e.args[0]);
                    return truthy(a) ? a : eval(*e.args[1]);
                }
                const Value a = eval(*e.args[0]), b = eval(*e.args[1]);
                if (op == "~") return Value::string(to_str(a) + to_str(b));
                if (op == "in") return Value::boolean(contains(b, a));
                if (op == "not in") return Value::boolean(!contains(b, a));
                if (op == "==" || op == "!=" || op == "<" || op == ">" || op == "<=" || op == ">=")
                    return Value::boolean(compare(op, a, b));
                return arith(op, a, b);
            }
        }
        return Value::undefined("?");
    }

    const std::map<std::string, Value>& globals_;
    std::vector<std::map<std::string, Value>> scopes_;
};

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, std::string where) : program_(std::make_unique<Program>()) {
    program_->where = where;
    auto pieces = split_template(std::string(source), [&](int line, const std::string& m) {
        throw Error(ErrorKind::input, where, "line " + std::to_string(line) + ": " + m);
    });
    program_->body = TemplateParser(std::move(pieces), where).parse_all();
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatRenderOptions& options) const {
    std::map<std::string, Value> globals;
    List msgs;
    for (const ChatMessage& m : messages)
        msgs.push_back(Value::make_dict({{"role", Value::string(m.role)}, {"content", Value::string(m.content)}}));
    globals["messages"] = Value::make_list(std::move(msgs));
    globals["add_generation_prompt"] = Value::boolean(options.add_generation_prompt);
    globals["tools"] = Value::none();
    globals["documents"] = Value::none();
    for (const auto& [k, v] : options.special_tokens) globals[k] = Value::string(v);
    Renderer r(globals);
    try {
        r.run(program_->body);
    } catch (const ChatTemplateError& e) {
        throw ChatTemplateError(program_->where, e.message());
    }
    return std::move(r.out);
}

}  // namespace critdim::tokenizer
