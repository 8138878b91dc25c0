#include "cli/commands.h"

int main(int argc, char** argv) { return quire::cli::Main(argc, argv); }
