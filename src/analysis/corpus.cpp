// Corpus readers: plain text (lines, paragraphs, whole files, folders), JSONL, JSON instruction
// lists and MMLU CSV in both layouts. Every error names the file and the line.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "critdim/analysis.hpp"

namespace fs = std::filesystem;

namespace critdim::analysis {

namespace {

struct FormatName {
    CorpusFormat format;
    const char* name;
};
constexpr FormatName kFormats[] = {
    {CorpusFormat::automatic, "auto"}, {CorpusFormat::lines, "lines"},
    {CorpusFormat::paragraphs, "paragraphs"}, {CorpusFormat::file, "file"},
    {CorpusFormat::jsonl, "jsonl"},   {CorpusFormat::instructions, "instructions"},
    {CorpusFormat::mmlu, "mmlu"},     {CorpusFormat::csv, "csv"},
};

std::string where(const std::string& path, int64_t line) { return path + ":" + std::to_string(line); }

bool is_blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; });
}

std::string_view strip(std::string_view s) {
    const char* ws = " \t\r\n\f\v";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Splits text into lines (without "\n"; a trailing "\r" is kept out too).
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        start = end + 1;
    }
    return lines;
}

void read_lines(const std::string& path, const std::string& text, std::vector<Document>& out) {
    const auto lines = split_lines(text);
    for (size_t i = 0; i < lines.size(); ++i)
        if (!is_blank(lines[i])) out.push_back({std::string(lines[i]), where(path, static_cast<int64_t>(i + 1)), {}});
}

void read_paragraphs(const std::string& path, const std::string& text, std::vector<Document>& out) {
    const auto lines = split_lines(text);
    std::string para;
    int64_t first = 0;
    for (size_t i = 0; i <= lines.size(); ++i) {
        if (i == lines.size() || is_blank(lines[i])) {
            if (!para.empty()) out.push_back({para, where(path, first), {}});
            para.clear();
            continue;
        }
        if (para.empty()) first = static_cast<int64_t>(i + 1);
        else para += '\n';
        para += lines[i];
    }
}

void read_jsonl(const std::string& path, const std::string& text, const std::string& field, std::vector<Document>& out) {
    const auto lines = split_lines(text);
    for (size_t i = 0; i < lines.size(); ++i) {
        if (is_blank(lines[i])) continue;
        const std::string at = where(path, static_cast<int64_t>(i + 1));
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(lines[i]);
        } catch (const nlohmann::json::exception& e) {
            throw_input(at, std::string("not valid JSON: ") + e.what());
        }
        if (!j.is_object()) throw_input(at, "expected a JSON object per line");
        const auto it = j.find(field);
        if (it == j.end()) throw_input(at, "no field '" + field + "' (set it with --field)");
        if (!it->is_string()) throw_input(at, "field '" + field + "' is not a string");
        out.push_back({it->get<std::string>(), at, {}});
    }
}

// The line (1-based) of a byte offset, for messages about JSON documents.
int64_t line_of(const std::string& text, size_t offset) {
    return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(std::min(offset, text.size())), '\n');
}

void read_instructions(const std::string& path, const std::string& text, std::vector<Document>& out) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw_input(where(path, line_of(text, e.byte > 0 ? e.byte - 1 : 0)), std::string("not valid JSON: ") + e.what());
    } catch (const nlohmann::json::exception& e) {  // e.g. a number beyond double's range: no position
        throw_input(path, std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_array()) throw_input(where(path, 1), "expected a JSON list of {\"instruction\": ...} objects");
    // Items are named by their index: a parsed JSON value no longer knows its line.
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& item = j[i];
        const std::string at = path + ": item " + std::to_string(i);
        if (item.is_string()) {
            out.push_back({item.get<std::string>(), at, {}});
            continue;
        }
        if (!item.is_object()) throw_input(at, "expected an object with an \"instruction\" string");
        const auto it = item.find("instruction");
        if (it == item.end() || !it->is_string()) throw_input(at, "no \"instruction\" string");
        std::string label;
        if (const auto c = item.find("category"); c != item.end() && c->is_string()) label = c->get<std::string>();
        out.push_back({it->get<std::string>(), at, label});
    }
}

// RFC 4180 CSV as Python's csv module writes it: quoted fields may hold commas, doubled quotes
// and line breaks. Each record carries the line it starts on.
struct CsvRecord {
    std::vector<std::string> fields;
    int64_t line = 0;
};

std::vector<CsvRecord> parse_csv(const std::string& path, const std::string& text) {
    std::vector<CsvRecord> records;
    CsvRecord rec;
    std::string field;
    int64_t line = 1;
    size_t i = 0;
    bool at_record_start = true;
    while (i < text.size()) {
        if (at_record_start) {
            rec = {};
            rec.line = line;
            at_record_start = false;
        }
        if (text[i] == '"' && field.empty()) {
            const int64_t quote_line = line;
            ++i;
            for (;;) {
                if (i >= text.size()) throw_input(where(path, quote_line), "quoted field is not closed");
                if (text[i] == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                if (text[i] == '\n') ++line;
                field += text[i++];
            }
            if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
                throw_input(where(path, line), "unexpected character after a closing quote");
            continue;
        }
        const char c = text[i++];
        if (c == ',') {
            rec.fields.push_back(std::move(field));
            field.clear();
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i < text.size() && text[i] == '\n') ++i;
            rec.fields.push_back(std::move(field));
            field.clear();
            records.push_back(std::move(rec));
            ++line;
            at_record_start = true;
        } else {
            field += c;
        }
    }
    if (!at_record_start) {
        rec.fields.push_back(std::move(field));
        records.push_back(std::move(rec));
    }
    // Blank lines are not records.
    std::erase_if(records, [](const CsvRecord& r) { return r.fields.size() == 1 && r.fields[0].empty(); });
    return records;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void read_mmlu(const std::string& path, const std::string& text, std::vector<Document>& out) {
    const std::vector<CsvRecord> records = parse_csv(path, text);
    // Column indices: the original layout is headerless `question,A,B,C,D,answer`; the Hugging
    // Face one has a header naming `question`, four choices and `answer` (an index 0-3).
    int q = 0, a = 5, subject_col = -1;
    int choice[4] = {1, 2, 3, 4};
    size_t first = 0, width = 6;
    if (!records.empty() && lower(records[0].fields[0]) == "question") {
        const auto& h = records[0].fields;
        width = h.size();
        q = -1, a = -1;
        int n_choices = 0;
        for (size_t c = 0; c < h.size(); ++c) {
            const std::string name = lower(std::string(strip(h[c])));
            if (name == "question") q = static_cast<int>(c);
            else if (name == "answer") a = static_cast<int>(c);
            else if (name == "subject") subject_col = static_cast<int>(c);
            else if (n_choices < 4 && (name == std::string("choice") + char('0' + n_choices) ||
                                       name == std::string(1, char('a' + n_choices))))
                choice[n_choices++] = static_cast<int>(c);
        }
        if (q < 0 || a < 0 || n_choices != 4)
            throw_input(where(path, 1), "header must name question, choice0..choice3 (or A..D) and answer");
        first = 1;
    }
    const std::string file_subject = mmlu_subject_from_path(path);
    for (size_t r = first; r < records.size(); ++r) {
        const CsvRecord& rec = records[r];
        const std::string at = where(path, rec.line);
        if (rec.fields.size() != width)
            throw_input(at, "expected " + std::to_string(width) + " fields, found " + std::to_string(rec.fields.size()));
        const std::string ans(strip(rec.fields[static_cast<size_t>(a)]));
        std::string letter;
        if (ans.size() == 1 && ans[0] >= 'A' && ans[0] <= 'D') letter = ans;
        else if (ans.size() == 1 && ans[0] >= '0' && ans[0] <= '3') letter = std::string(1, char('A' + (ans[0] - '0')));
        else throw_input(at, "answer '" + ans + "' is not one of A-D or 0-3");
        const std::string choices[4] = {rec.fields[static_cast<size_t>(choice[0])], rec.fields[static_cast<size_t>(choice[1])],
                                        rec.fields[static_cast<size_t>(choice[2])], rec.fields[static_cast<size_t>(choice[3])]};
        std::string subject = file_subject;
        if (subject_col >= 0 && !rec.fields[static_cast<size_t>(subject_col)].empty()) {
            subject = rec.fields[static_cast<size_t>(subject_col)];
            std::replace(subject.begin(), subject.end(), '_', ' ');
        }
        out.push_back({render_mmlu(subject, rec.fields[static_cast<size_t>(q)], choices), at, letter});
    }
}

void read_csv_column(const std::string& path, const std::string& text, const std::string& field,
                     std::vector<Document>& out) {
    const std::vector<CsvRecord> records = parse_csv(path, text);
    if (records.empty()) return;
    const auto& header = records[0].fields;
    const auto col = static_cast<size_t>(std::find(header.begin(), header.end(), field) - header.begin());
    if (col == header.size()) throw_input(where(path, 1), "no column '" + field + "' in the header (set it with --field)");
    for (size_t r = 1; r < records.size(); ++r) {
        const CsvRecord& rec = records[r];
        if (rec.fields.size() != header.size())
            throw_input(where(path, rec.line), "expected " + std::to_string(header.size()) + " fields, found " +
                                                   std::to_string(rec.fields.size()));
        if (!is_blank(rec.fields[col])) out.push_back({rec.fields[col], where(path, rec.line), {}});
    }
}

CorpusFormat format_for_file(const fs::path& p) {
    const std::string ext = lower(p.extension().string());
    if (ext == ".jsonl") return CorpusFormat::jsonl;
    if (ext == ".json") return CorpusFormat::instructions;
    if (ext == ".csv") return CorpusFormat::mmlu;
    return CorpusFormat::lines;
}

void read_file(const std::string& path, CorpusFormat format, const std::string& field, std::vector<Document>& out) {
    std::string text;
    try {
        text = read_text_file(path);
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw_io(path, e.what());
    }
    if (format == CorpusFormat::automatic) format = format_for_file(path);
    switch (format) {
        case CorpusFormat::automatic:
        case CorpusFormat::lines: read_lines(path, text, out); break;
        case CorpusFormat::paragraphs: read_paragraphs(path, text, out); break;
        case CorpusFormat::file:
            if (!is_blank(text)) out.push_back({text, where(path, 1), {}});
            break;
        case CorpusFormat::jsonl: read_jsonl(path, text, field, out); break;
        case CorpusFormat::instructions: read_instructions(path, text, out); break;
        case CorpusFormat::mmlu: read_mmlu(path, text, out); break;
        case CorpusFormat::csv: read_csv_column(path, text, field, out); break;
    }
}

}  // namespace

const char* corpus_format_name(CorpusFormat f) {
    for (const auto& n : kFormats)
        if (n.format == f) return n.name;
    return "?";
}

CorpusSpec CorpusSpec::parse(std::string_view text) {
    CorpusSpec spec;
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos) {
        const std::string_view prefix = text.substr(0, colon);
        for (const auto& n : kFormats) {
            if (prefix == n.name) {
                spec.format = n.format;
                spec.path = std::string(text.substr(colon + 1));
                if (spec.path.empty()) throw_usage("--corpus: '" + std::string(text) + "' names no path");
                return spec;
            }
        }
    }
    spec.path = std::string(text);
    if (spec.path.empty()) throw_usage("--corpus: empty spec");
    return spec;
}

std::vector<CorpusSpec> parse_corpus_specs(const std::vector<std::string>& texts, const std::string& field) {
    std::vector<CorpusSpec> specs;
    for (const std::string& t : texts) {
        specs.push_back(CorpusSpec::parse(t));
        specs.back().field = field;
    }
    return specs;
}

std::string CorpusSpec::to_string() const {
    std::string s = format == CorpusFormat::automatic ? path : std::string(corpus_format_name(format)) + ":" + path;
    if (format == CorpusFormat::jsonl || format == CorpusFormat::csv || field != "text") s += " field=" + field;
    return s;
}

std::string mmlu_subject_from_path(const std::string& path) {
    std::string stem = fs::path(path).stem().string();
    for (const char* suffix : {"_test", "_dev", "_val", "_validation", "_train"}) {
        const std::string_view sf = suffix;
        if (stem.size() > sf.size() && stem.compare(stem.size() - sf.size(), sf.size(), sf) == 0) {
            stem.resize(stem.size() - sf.size());
            break;
        }
    }
    std::replace(stem.begin(), stem.end(), '_', ' ');
    return stem;
}

std::string render_mmlu(std::string_view subject, std::string_view question, const std::string (&choices)[4]) {
    std::string s = "The following are multiple choice questions (with answers) about ";
    s += subject;
    s += ".\n\n";
    s += strip(question);
    for (int i = 0; i < 4; ++i) {
        s += '\n';
        s += char('A' + i);
        s += ". ";
        s += choices[i];
    }
    s += "\nAnswer:";
    return s;
}

std::vector<std::string> csv_header(const std::string& path) {
    const std::vector<CsvRecord> records = parse_csv(path, read_text_file(path));
    return records.empty() ? std::vector<std::string>{} : records[0].fields;
}

std::vector<Document> read_corpus(const CorpusSpec& spec) {
    std::vector<Document> docs;
    std::error_code ec;
    const fs::file_status st = fs::status(spec.path, ec);
    if (ec || !fs::exists(st)) throw_io(spec.path, "no such file or folder");
    if (fs::is_directory(st)) {
        std::vector<std::string> files;
        for (const auto& e : fs::recursive_directory_iterator(spec.path, ec))
            if (e.is_regular_file()) files.push_back(e.path().string());
        if (ec) throw_io(spec.path, ec.message());
        std::sort(files.begin(), files.end());
        for (const std::string& f : files) {
            // A folder of text files: one document per file unless the spec says otherwise.
            CorpusFormat fmt = spec.format;
            if (fmt == CorpusFormat::automatic) {
                fmt = format_for_file(f);
                if (fmt == CorpusFormat::lines) fmt = CorpusFormat::file;
            }
            read_file(f, fmt, spec.field, docs);
        }
        if (docs.empty()) throw_input(spec.path, "the folder holds no documents");
        return docs;
    }
    read_file(spec.path, spec.format, spec.field, docs);
    if (docs.empty()) throw_input(spec.path, "the corpus is empty (no non-blank document)");
    return docs;
}

}  // namespace critdim::analysis
