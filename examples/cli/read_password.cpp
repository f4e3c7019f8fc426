// Ubuzima Sync — MIT licence.
// Reading the login password at the console: environment, terminal without echo, or stdin.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli.hpp"

namespace ubuzima::cli {

namespace {

std::string read_line(std::FILE* in) {
    std::string out;
    for (int c = std::fgetc(in); c != EOF && c != '\n'; c = std::fgetc(in)) out.push_back(static_cast<char>(c));
    if (!out.empty() && out.back() == '\r') out.pop_back();
    return out;
}

}  // namespace

Result<std::string> read_password(const std::string& prompt) {
    if (const char* env = std::getenv("UBUZIMA_PASSWORD"); env && *env) return std::string(env);
    if (!isatty(STDIN_FILENO)) {
        std::string line = read_line(stdin);
        if (line.empty()) return Status(ErrorCode::InvalidArgument, "no password on standard input");
        return line;
    }
    std::FILE* tty = std::fopen("/dev/tty", "r+");
    if (!tty) return Status(ErrorCode::InvalidArgument, "no terminal to ask for the password: set UBUZIMA_PASSWORD");
    termios before{};
    const bool quiet = tcgetattr(fileno(tty), &before) == 0;
    if (quiet) {
        termios off = before;
        off.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(fileno(tty), TCSAFLUSH, &off);
    }
    std::fputs(prompt.c_str(), tty);
    std::fflush(tty);
    std::string line = read_line(tty);
    if (quiet) tcsetattr(fileno(tty), TCSAFLUSH, &before);
    std::fputs("\n", tty);
    std::fclose(tty);
    if (line.empty()) return Status(ErrorCode::InvalidArgument, "no password typed");
    return line;
}

}  // namespace ubuzima::cli
