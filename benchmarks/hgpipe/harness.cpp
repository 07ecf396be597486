// Cycle-counting testbench for one HLS ap_ctrl_chain block (or a chain of them) with AXI-Stream ports.
// Inputs are held at their free-running values (ap_start, ap_continue, i_stream_TVALID, o_stream_TREADY = 1,
// TDATA = 0) because the blocks' control flow is data-independent; what is measured is when handshakes happen.
// Usage: sim MAX_CYCLES FRAMES IN_BEATS_PER_FRAME OUT_BEATS_PER_FRAME
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "top.h"  // written by run_hgpipe.py: includes the Verilated model and names it Top
#include "verilated.h"

int main(int argc, char** argv) {
    if (argc != 5) return 2;
    const long max_cycles = atol(argv[1]), frames = atol(argv[2]);
    const long in_per = atol(argv[3]), out_per = atol(argv[4]);
    VerilatedContext* ctx = new VerilatedContext;
    Top* top = new Top{ctx};
    auto tick = [&]() { top->ap_clk = 0; top->eval(); top->ap_clk = 1; top->eval(); };
    top->ap_rst_n = 0;
    for (int i = 0; i < 20; ++i) tick();
    top->ap_rst_n = 1;
    top->ap_start = 1; top->ap_continue = 1; top->i_stream_TVALID = 1; top->o_stream_TREADY = 1;
    long n_in = 0, n_out = 0, c = 0;
    const std::clock_t t0 = std::clock();
    // Cycle c's handshakes are sampled with the clock low, after the inputs settle, i.e. just before edge c.
    for (; c < max_cycles && n_out < frames * out_per; ++c) {
        top->ap_clk = 0; top->eval();
        if (top->i_stream_TREADY) {
            if (n_in % in_per == 0) printf("in_first %ld %ld\n", n_in / in_per, c);
            if (n_in % in_per == in_per - 1) printf("in_last %ld %ld\n", n_in / in_per, c);
            ++n_in;
        }
        if (top->o_stream_TVALID) {
            if (n_out % out_per == 0) printf("out_first %ld %ld\n", n_out / out_per, c);
            if (n_out % out_per == out_per - 1) printf("out_last %ld %ld\n", n_out / out_per, c);
            ++n_out;
        }
        if (top->ap_done) printf("done %ld\n", c);
        top->ap_clk = 1; top->eval();
    }
    const double cpu_s = double(std::clock() - t0) / CLOCKS_PER_SEC;
    printf("cycles %ld cpu_s %.3f in_beats %ld out_beats %ld\n", c, cpu_s, n_in, n_out);
    top->final();
    delete top;
    delete ctx;
    return 0;
}
