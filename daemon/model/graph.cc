#include "model/graph.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace aers::model {

Endpoint Endpoint::Parse(std::string_view text) {
  Endpoint e;
  const auto dot = text.find('.');
  if (dot == std::string_view::npos) {
    e.node = std::string(text);
  } else {
    e.node = std::string(text.substr(0, dot));
    e.port = std::string(text.substr(dot + 1));
  }
  return e;
}

std::string Endpoint::ToString() const {
  return port.empty() ? node : node + "." + port;
}

namespace {

bool SameBits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

bool Identical(const ParamValue& a, const ParamValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* d = std::get_if<double>(&a)) return SameBits(*d, std::get<double>(b));
  if (const auto* list = std::get_if<std::vector<double>>(&a)) {
    const auto& other = std::get<std::vector<double>>(b);
    return std::equal(list->begin(), list->end(), other.begin(), other.end(), SameBits);
  }
  return a == b;
}

}  // namespace

bool Identical(const NodeSpec& a, const NodeSpec& b) {
  return a.name == b.name && a.kind == b.kind && a.channels == b.channels && a.preset == b.preset &&
         std::equal(a.params.begin(), a.params.end(), b.params.begin(), b.params.end(),
                    [](const auto& x, const auto& y) {
                      return x.first == y.first && Identical(x.second, y.second);
                    });
}

const NodeSpec* GraphSpec::FindNode(std::string_view name) const {
  for (const auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

NodeSpec* GraphSpec::FindNode(std::string_view name) {
  for (auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const ExternalPort* GraphSpec::FindInput(std::string_view name) const {
  for (const auto& p : inputs) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ExternalPort* GraphSpec::FindOutput(std::string_view name) const {
  for (const auto& p : outputs) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

int GraphSpec::TotalInputChannels() const {
  int n = 0;
  for (const auto& p : inputs) n += p.channels;
  return n;
}

int GraphSpec::TotalOutputChannels() const {
  int n = 0;
  for (const auto& p : outputs) n += p.channels;
  return n;
}

namespace {
std::string FormatNumber(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

std::string FormatParamValue(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(double d) const { return FormatNumber(d); }
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(const std::vector<double>& v) const {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        out += FormatNumber(v[i]);
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace aers::model
