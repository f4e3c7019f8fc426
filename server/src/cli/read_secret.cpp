// Ubuzima Sync — MIT licence.
// Console password input: environment, terminal without echo, or standard input.
#include "cli/read_secret.hpp"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

extern char** environ;

namespace ubuzima::server {

namespace {

bool read_line(std::FILE* in, std::string& out) {
    out.clear();
    for (int c = std::fgetc(in); c != EOF && c != '\n'; c = std::fgetc(in)) out.push_back(static_cast<char>(c));
    if (!out.empty() && out.back() == '\r') out.pop_back();
    return !out.empty() || !std::feof(in);
}

/// Reads one line from the terminal with echo off, restoring the terminal whatever happens.
bool read_hidden(const std::string& prompt, std::string& out) {
    std::FILE* tty = std::fopen("/dev/tty", "r+");
    if (!tty) return false;
    const int fd = fileno(tty);
    termios before{};
    const bool have_termios = tcgetattr(fd, &before) == 0;
    if (have_termios) {
        termios quiet = before;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    std::fputs(prompt.c_str(), tty);
    std::fflush(tty);
    const bool ok = read_line(tty, out);
    if (have_termios) tcsetattr(fd, TCSAFLUSH, &before);
    std::fputs("\n", tty);
    std::fclose(tty);
    return ok;
}

}  // namespace

Result<std::string> read_secret(const std::string& prompt, bool confirm) {
    if (const char* env = std::getenv("UBUZIMA_PASSWORD"); env && *env) {
        std::string value = env;
        scrub_environment_value("UBUZIMA_PASSWORD");
        return value;
    }
    std::string first;
    if (isatty(STDIN_FILENO)) {
        if (!read_hidden(prompt, first) || first.empty()) return Status(ErrorCode::InvalidArgument, "no password typed");
        if (confirm) {
            std::string second;
            if (!read_hidden("again: ", second) || second != first)
                return Status(ErrorCode::InvalidArgument, "the two passwords differ");
        }
        return first;
    }
    if (!read_line(stdin, first) || first.empty())
        return Status(ErrorCode::InvalidArgument, "no password: set UBUZIMA_PASSWORD or pipe it on standard input");
    return first;
}

void scrub_environment_value(const char* name) {
    const std::size_t n = std::strlen(name);
    for (char** e = environ; e && *e; ++e) {
        if (std::strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            char* value = *e + n + 1;
            std::memset(value, 0, std::strlen(value));
        }
    }
}

}  // namespace ubuzima::server
