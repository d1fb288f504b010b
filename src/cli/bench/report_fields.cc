#include "cli/bench/report_fields.h"

#include <google/protobuf/struct.pb.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "cli/output.h"

namespace gradientd::cli::bench {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

double AsDouble(const FieldValue& value) {
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const auto* d = std::get_if<double>(&value)) return *d;
  return 0;
}

// `v` to 10 significant digits, the precision the report has always had.
double TenDigits(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return std::strtod(buf, nullptr);
}

struct ToJsonValue {
  Value* out;
  void operator()(JsonNull) const { out->set_null_value(google::protobuf::NULL_VALUE); }
  void operator()(bool b) const { out->set_bool_value(b); }
  void operator()(uint64_t u) const { out->set_number_value(static_cast<double>(u)); }
  void operator()(double d) const {
    if (!std::isfinite(d)) return (*this)(JsonNull{});
    out->set_number_value(TenDigits(d));
  }
  void operator()(const std::string& s) const { out->set_string_value(s); }
  void operator()(JsonEmptyObject) const { out->mutable_struct_value(); }
};

// The object at `path` under `root`, made as needed.
Struct* ObjectAt(Struct* root, const std::vector<std::string>& path) {
  Struct* object = root;
  for (const std::string& key : path)
    object = (*object->mutable_fields())[key].mutable_struct_value();
  return object;
}

std::string ValueText(const Field& field) {
  const Format& f = field.format;
  switch (f.style) {
    case Format::Style::kHidden:
      return "";
    case Format::Style::kText:
      return std::get<std::string>(field.value);
    case Format::Style::kInteger:
      return std::to_string(std::get<uint64_t>(field.value));
    case Format::Style::kGrouped:
      return Grouped(std::get<uint64_t>(field.value));
    case Format::Style::kNumber:
      return FormatNumber(AsDouble(field.value));
    case Format::Style::kFixed:
      return FormatFixed(AsDouble(field.value) / f.divisor, f.decimals);
  }
  return "";
}

std::string RowText(const Row& row) {
  std::string text;
  for (const Field& field : row.fields) {
    if (field.format.style == Format::Style::kHidden) continue;
    text += field.format.before + ValueText(field) + field.format.after;
  }
  return text;
}

}  // namespace

Field JsonOnly(std::string key, FieldValue value) {
  return Field{std::move(key), std::move(value), Format{}};
}

Field Shown(std::string key, FieldValue value, Format format) {
  return Field{std::move(key), std::move(value), std::move(format)};
}

Field Literal(std::string text) {
  return Field{"", std::move(text), Format{.style = Format::Style::kText}};
}

void PrintJson(const std::vector<Row>& rows, std::ostream& out) {
  Struct root;
  for (const Row& row : rows) {
    for (const Field& field : row.fields) {
      if (field.key.empty()) continue;
      Value* value = &(*ObjectAt(&root, row.object)->mutable_fields())[field.key];
      std::visit(ToJsonValue{value}, field.value);
    }
  }
  out << ToJson(root) << '\n';
}

void PrintReadable(const std::vector<Row>& rows, std::ostream& out) {
  KeyValueBlock block;
  bool heading = false;
  for (const Row& row : rows) {
    if (row.kind == Row::Kind::kHeading) {
      out << RowText(row) << '\n';
      heading = true;
    } else if (row.kind == Row::Kind::kLine) {
      block.Add(row.label, RowText(row));
    }
  }
  if (heading) out << '\n';
  block.Print(out);
}

std::string Grouped(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace gradientd::cli::bench
