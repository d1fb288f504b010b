#include "cli/csv_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace gradientd::cli {
namespace {

struct Points {
  std::vector<double> x;
  std::vector<double> y;
};

// Reads everything in batches of `batch`; returns the final status.
Status ReadAll(CsvPointReader& reader, Points* points, std::size_t batch = 1000) {
  std::vector<double> x;
  std::vector<double> y;
  while (true) {
    Status s = reader.Next(&x, &y, batch);
    points->x.insert(points->x.end(), x.begin(), x.end());
    points->y.insert(points->y.end(), y.begin(), y.end());
    if (!s.ok() || x.empty()) return s;
  }
}

Status ReadText(const std::string& text, CsvOptions options, Points* points,
                std::size_t batch = 1000) {
  std::istringstream in(text);
  CsvPointReader reader(in, "data.csv", std::move(options));
  return ReadAll(reader, points, batch);
}

CsvOptions Columns(const std::string& x, const std::string& y) {
  CsvOptions options;
  EXPECT_TRUE(ColumnSpec::Parse(x, &options.x_column).ok());
  EXPECT_TRUE(ColumnSpec::Parse(y, &options.y_column).ok());
  return options;
}

TEST(ColumnSpecTest, DigitsAreAnIndexAnythingElseAName) {
  ColumnSpec spec;
  ASSERT_TRUE(ColumnSpec::Parse("2", &spec).ok());
  ASSERT_TRUE(spec.index.has_value());
  EXPECT_EQ(*spec.index, 2u);
  ASSERT_TRUE(ColumnSpec::Parse("revenue", &spec).ok());
  EXPECT_FALSE(spec.index.has_value());
  EXPECT_EQ(spec.name, "revenue");
  ASSERT_TRUE(ColumnSpec::Parse("-1", &spec).ok());
  EXPECT_FALSE(spec.index.has_value());
  EXPECT_FALSE(ColumnSpec::Parse("", &spec).ok());
  EXPECT_FALSE(ColumnSpec::Parse("99999999999999999999999", &spec).ok());
}

TEST(SplitCsvLineTest, FieldsWhitespaceAndQuotes) {
  std::vector<std::string> f;
  ASSERT_TRUE(SplitCsvLine("a,b,,c", ',', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"a", "b", "", "c"}));
  ASSERT_TRUE(SplitCsvLine("  1 ,\t2\t, 3  ", ',', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"1", "2", "3"}));
  ASSERT_TRUE(SplitCsvLine(R"("a, b" , "say ""hi""",x)", ',', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"a, b", "say \"hi\"", "x"}));
  ASSERT_TRUE(SplitCsvLine("a,", ',', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"a", ""}));
  ASSERT_TRUE(SplitCsvLine("a;b c;d", ';', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"a", "b c", "d"}));
  // A tab delimiter is not also whitespace.
  ASSERT_TRUE(SplitCsvLine("1\t\t2", '\t', &f).ok());
  EXPECT_EQ(f, (std::vector<std::string>{"1", "", "2"}));
}

TEST(SplitCsvLineTest, MalformedQuotes) {
  std::vector<std::string> f;
  EXPECT_FALSE(SplitCsvLine(R"(1,"abc)", ',', &f).ok());
  EXPECT_FALSE(SplitCsvLine(R"("ab"c,1)", ',', &f).ok());
}

TEST(ParseCsvNumberTest, AcceptsNumbersOnly) {
  double v = 0;
  EXPECT_TRUE(ParseCsvNumber("1.5", &v));
  EXPECT_EQ(v, 1.5);
  EXPECT_TRUE(ParseCsvNumber(" -2e3 ", &v));
  EXPECT_EQ(v, -2000);
  EXPECT_TRUE(ParseCsvNumber("+7", &v));
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(ParseCsvNumber(".25", &v));
  EXPECT_EQ(v, 0.25);
  EXPECT_TRUE(ParseCsvNumber("1e400", &v));
  EXPECT_TRUE(std::isinf(v));
  EXPECT_TRUE(ParseCsvNumber("1e-400", &v));
  EXPECT_EQ(v, 0);
  EXPECT_FALSE(ParseCsvNumber("", &v));
  EXPECT_FALSE(ParseCsvNumber("abc", &v));
  EXPECT_FALSE(ParseCsvNumber("1.5x", &v));
  EXPECT_FALSE(ParseCsvNumber("+-1", &v));
  EXPECT_FALSE(ParseCsvNumber("0x10", &v));
  EXPECT_FALSE(ParseCsvNumber("1 2", &v));
}

TEST(CsvPointReaderTest, HeaderByName) {
  Points p;
  ASSERT_TRUE(
      ReadText("month,region,revenue\n1,north,52\n2,south,74\n", Columns("month", "revenue"), &p)
          .ok());
  EXPECT_EQ(p.x, (std::vector<double>{1, 2}));
  EXPECT_EQ(p.y, (std::vector<double>{52, 74}));
}

TEST(CsvPointReaderTest, ColumnsInAnyOrder) {
  Points p;
  ASSERT_TRUE(ReadText("a,b,c\n1,2,3\n4,5,6\n", Columns("c", "a"), &p).ok());
  EXPECT_EQ(p.x, (std::vector<double>{3, 6}));
  EXPECT_EQ(p.y, (std::vector<double>{1, 4}));
}

TEST(CsvPointReaderTest, ByIndexWithHeader) {
  Points p;
  ASSERT_TRUE(ReadText("id,x,y\n7,1.5,2.5\n8,3,4\n", Columns("1", "2"), &p).ok());
  EXPECT_EQ(p.x, (std::vector<double>{1.5, 3}));
  EXPECT_EQ(p.y, (std::vector<double>{2.5, 4}));
}

TEST(CsvPointReaderTest, NoHeaderDefaultsToColumnsZeroAndOne) {
  Points p;
  ASSERT_TRUE(ReadText("1,10\n2,20\n3,30", CsvOptions{}, &p).ok());  // no final newline
  EXPECT_EQ(p.x, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(p.y, (std::vector<double>{10, 20, 30}));
}

TEST(CsvPointReaderTest, AutoDetectsHeader) {
  {
    std::istringstream in("x,y\n1,2\n");
    CsvPointReader reader(in, "data.csv", CsvOptions{});
    Points p;
    ASSERT_TRUE(ReadAll(reader, &p).ok());
    EXPECT_TRUE(reader.has_header());
    EXPECT_EQ(reader.header(), (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(p.x, (std::vector<double>{1}));
  }
  {
    std::istringstream in("1,2\n3,4\n");
    CsvPointReader reader(in, "data.csv", CsvOptions{});
    Points p;
    ASSERT_TRUE(ReadAll(reader, &p).ok());
    EXPECT_FALSE(reader.has_header());
    EXPECT_EQ(p.x, (std::vector<double>{1, 3}));
  }
  {
    // Only the selected fields matter: column 0 is text in every line.
    std::istringstream in("name,x,y\nfoo,1,2\n");
    CsvOptions options = Columns("1", "2");
    CsvPointReader reader(in, "data.csv", options);
    Points p;
    ASSERT_TRUE(ReadAll(reader, &p).ok());
    EXPECT_TRUE(reader.has_header());
    EXPECT_EQ(p.y, (std::vector<double>{2}));
  }
}

TEST(CsvPointReaderTest, AutoDetectReportsAHalfNumericFirstLineAsData) {
  // One selected field is a number: data, with its bad field reported.
  Points p;
  const Status s = ReadText("1,abc\n2,3\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "data.csv:1: column 1 (y) is not a number: \"abc\"");
}

TEST(CsvPointReaderTest, ExplicitHeaderOverrides) {
  {
    // A numeric header line is dropped when told there is a header.
    CsvOptions options;
    options.header = HeaderMode::kPresent;
    Points p;
    ASSERT_TRUE(ReadText("2020,2021\n1,2\n", options, &p).ok());
    EXPECT_EQ(p.x, (std::vector<double>{1}));
  }
  {
    // Without a header, a text first line is a bad data line.
    CsvOptions options;
    options.header = HeaderMode::kAbsent;
    Points p;
    const Status s = ReadText("x,y\n1,2\n", options, &p);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.message(), "data.csv:1: column 0 (x) is not a number: \"x\"");
  }
  {
    CsvOptions options = Columns("x", "y");
    options.header = HeaderMode::kAbsent;
    Points p;
    const Status s = ReadText("1,2\n", options, &p);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("data.csv:1: the x column 'x' is selected by name"),
              std::string::npos)
        << s.message();
  }
}

TEST(CsvPointReaderTest, QuotedFields) {
  Points p;
  ASSERT_TRUE(
      ReadText("\"when\",\"how much\"\n\"1\", \"2.5\"\n\"3\",4\n", Columns("when", "how much"), &p)
          .ok());
  EXPECT_EQ(p.x, (std::vector<double>{1, 3}));
  EXPECT_EQ(p.y, (std::vector<double>{2.5, 4}));
}

TEST(CsvPointReaderTest, CrlfLineEndingsAndByteOrderMark) {
  Points p;
  ASSERT_TRUE(
      ReadText("\xEF\xBB\xBFmonth,revenue\r\n1,52\r\n2,74\r\n", Columns("month", "revenue"), &p)
          .ok());
  EXPECT_EQ(p.x, (std::vector<double>{1, 2}));
  EXPECT_EQ(p.y, (std::vector<double>{52, 74}));
}

TEST(CsvPointReaderTest, SkipsCommentsAndBlankLines) {
  Points p;
  ASSERT_TRUE(
      ReadText("# exported 2024-01-01\n\nx,y\n  \n1,2\n   # a note\n\r\n3,4\n\n", CsvOptions{}, &p)
          .ok());
  EXPECT_EQ(p.x, (std::vector<double>{1, 3}));
  EXPECT_EQ(p.y, (std::vector<double>{2, 4}));
}

TEST(CsvPointReaderTest, OtherDelimiters) {
  CsvOptions options = Columns("a", "b");
  options.delimiter = ';';
  Points p;
  ASSERT_TRUE(ReadText("a;b\n1,5;2\n", options, &p).ok() == false);  // "1,5" is not a number
  options.delimiter = '\t';
  Points q;
  ASSERT_TRUE(ReadText("a\tb\n 1\t2 \n", options, &q).ok());
  EXPECT_EQ(q.x, (std::vector<double>{1}));
  EXPECT_EQ(q.y, (std::vector<double>{2}));
}

TEST(CsvPointReaderTest, BatchesAcrossNextCalls) {
  std::string text = "x,y\n";
  for (int i = 0; i < 10; ++i) {
    text += std::to_string(i) + "," + std::to_string(i * i) + "\n";
    if (i == 4) text += "# halfway\n\n";
  }
  std::istringstream in(text);
  CsvPointReader reader(in, "data.csv", CsvOptions{});
  std::vector<double> x;
  std::vector<double> y;
  std::vector<std::size_t> sizes;
  std::vector<double> all_x;
  while (true) {
    ASSERT_TRUE(reader.Next(&x, &y, 4).ok());
    ASSERT_EQ(x.size(), y.size());
    if (x.empty()) break;
    sizes.push_back(x.size());
    all_x.insert(all_x.end(), x.begin(), x.end());
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i] * x[i]);
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 4, 2}));
  EXPECT_EQ(all_x, (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(reader.points_read(), 10u);
  // At the end it keeps returning no points.
  ASSERT_TRUE(reader.Next(&x, &y, 4).ok());
  EXPECT_TRUE(x.empty());
}

TEST(CsvPointReaderTest, EmptyInputHasNoPoints) {
  Points p;
  EXPECT_TRUE(ReadText("", CsvOptions{}, &p).ok());
  EXPECT_TRUE(ReadText("# nothing\n\n", Columns("a", "b"), &p).ok());
  EXPECT_TRUE(ReadText("a,b\n", Columns("a", "b"), &p).ok());
  EXPECT_TRUE(p.x.empty());
}

TEST(CsvPointReaderTest, BadNumberNamesTheLineAndColumn) {
  // Line numbers are physical lines, counting comments and blank lines.
  const std::string text = "month,revenue\n1,52\n# note\n\n2,74\n3,abc\n4,95\n";
  std::istringstream in(text);
  CsvPointReader reader(in, "data.csv", Columns("month", "revenue"));
  std::vector<double> x;
  std::vector<double> y;
  const Status s = reader.Next(&x, &y, 100);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "data.csv:6: column 'revenue' (y) is not a number: \"abc\"");
  // The points before the bad line are returned with the error.
  EXPECT_EQ(x, (std::vector<double>{1, 2}));
  EXPECT_EQ(y, (std::vector<double>{52, 74}));
  EXPECT_EQ(reader.line_number(), 6u);
  // The error is sticky.
  const Status again = reader.Next(&x, &y, 100);
  EXPECT_EQ(again.message(), s.message());
  EXPECT_TRUE(x.empty());
}

TEST(CsvPointReaderTest, BadNumberInALaterBatch) {
  std::istringstream in("1,1\n2,2\n3,3\n4,x\n");
  CsvPointReader reader(in, "in.csv", CsvOptions{});
  std::vector<double> x;
  std::vector<double> y;
  ASSERT_TRUE(reader.Next(&x, &y, 2).ok());
  EXPECT_EQ(x.size(), 2u);
  const Status s = reader.Next(&x, &y, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(x, (std::vector<double>{3}));
  EXPECT_EQ(s.message(), "in.csv:4: column 1 (y) is not a number: \"x\"");
}

TEST(CsvPointReaderTest, EmptyFieldIsNotANumber) {
  Points p;
  const Status s = ReadText("x,y\n1,\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.csv:2: column 'y' (y, index 1) is not a number: \"\"");
}

TEST(CsvPointReaderTest, NonFiniteAndOutOfRangeValues) {
  Points p;
  Status s = ReadText("1,inf\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.csv:1: column 1 (y) is not a finite number: \"inf\"");
  s = ReadText("1,2\n1e999,2\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.csv:2: column 0 (x) is not a finite number: \"1e999\"");
  CsvOptions options;
  options.max_abs_value = 1e150;
  s = ReadText("1,2\n3,-1e151\n", options, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("data.csv:2: column 1 (y) is out of range"), std::string::npos)
      << s.message();
}

TEST(CsvPointReaderTest, MissingColumn) {
  Points p;
  const Status s = ReadText("1,2\n3,4\n5\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.csv:3: has 1 column, need 2 for column 1 (y)");
  EXPECT_EQ(p.x, (std::vector<double>{1, 3}));

  const Status named = ReadText("a,b,c\n1,2,3\n1,2\n", Columns("a", "c"), &p);
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.message(), "data.csv:3: has 2 columns, need 3 for column 'c' (y)");

  const Status x_missing = ReadText("1,2,3\n", Columns("7", "0"), &p);
  ASSERT_FALSE(x_missing.ok());
  EXPECT_EQ(x_missing.message(), "data.csv:1: has 3 columns, need 8 for column 7 (x)");
}

TEST(CsvPointReaderTest, UnknownHeaderNameListsTheColumns) {
  Points p;
  const Status s = ReadText("\n# c\nmonth,revenue\n1,2\n", Columns("month", "sales"), &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "data.csv:3: no column named 'sales' in the header (for y); available columns: "
            "'month', 'revenue'");
  EXPECT_TRUE(p.x.empty());
}

TEST(CsvPointReaderTest, MalformedQuoteNamesTheLine) {
  Points p;
  const Status s = ReadText("x,y\n1,2\n\"3,4\n", CsvOptions{}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("data.csv:3: unterminated quoted field", 0), 0u) << s.message();
}

}  // namespace
}  // namespace gradientd::cli
