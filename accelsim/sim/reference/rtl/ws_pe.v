// One PE of the pipelined weight-stationary array (accelsim.sim.engines.systolic, module
// docstring, "pipelined" timing, ws/is; register-level Python model: _ws_pipelined in
// accelsim/sim/reference/pe.py).
//
// The PE holds two banks of stationary weights (ping-pong "shadow" registers): fold n multiplies
// by bank n mod 2 while fold n+1's weights shift down the column's load chain and latch into the
// other bank. Which bank a MAC uses is carried by the activation itself (x_bank_in), so the
// switch from one fold to the next travels through the array with the data: no PE needs to know
// where the wavefront is.
//
// Per cycle: the activation moves one PE right, the partial sum one PE down (both registered),
// the chain stage takes the stage above when the column shifts, and on the load's last shift
// the bank latches the value that is shifting in, i.e. the chain's next state, so the weights are
// usable from the next cycle on. A load shifts in only the rows that hold data; the array does
// not latch the rows below them, which keep stale weights and meet zero activations.
//
// Packing (PC x PS products per cycle, at most two: one DSP48E2, packed_mul2): the PE holds PC
// columns of the stationary operand (lanes a) and takes PS consecutive vectors per cycle (lanes
// u), keeping PC*PS partial sums, lane a*PS + u. PC = 2 is ws with two weights per DSP (Packing
// n = 2); PS = 2 is is with two activations per DSP (the ws array run on the transposed problem).
module ws_pe #(
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter PC     = 1,
    parameter PS     = 1
) (
    input  wire                     clk,
    input  wire                     rst,
    // activations from the left neighbour (or the row's edge), with their valid bit and fold's bank
    input  wire [PS*DATA_W-1:0]     x_in,
    input  wire                     x_valid_in,
    input  wire                     x_bank_in,
    output reg  [PS*DATA_W-1:0]     x_out,
    output reg                      x_valid_out,
    output reg                      x_bank_out,
    // partial sums from the PE above (zero at the top row), to the PE below
    input  wire [PC*PS*ACC_W-1:0]   psum_in,
    output reg  [PC*PS*ACC_W-1:0]   psum_out,
    // weight load chain: data from the stage above, column-wide shift / latch / bank select
    input  wire [PC*DATA_W-1:0]     w_in,
    input  wire                     w_shift,
    input  wire                     w_latch,
    input  wire                     w_bank,
    output reg  [PC*DATA_W-1:0]     w_chain,
    // this PE does a MAC in this cycle (for the array's last-MAC cycle counter)
    output wire                     mac
);
    localparam NP = PC * PS;
    reg  [PC*DATA_W-1:0] bank0, bank1;
    wire [PC*DATA_W-1:0] w_use = x_bank_in ? bank1 : bank0;
    // the exact products (2*DATA_W bits each), lane a*PS + u
    wire [NP*2*DATA_W-1:0] prods;
    generate
        if (NP == 1) begin : g_one
            assign prods = $signed(x_in) * $signed(w_use);
        end else if (PC == 2) begin : g_two_weights
            packed_mul2 #(.DATA_W(DATA_W)) u_dsp (.a(w_use), .c(x_in), .p(prods));
        end else begin : g_two_vectors
            packed_mul2 #(.DATA_W(DATA_W)) u_dsp (.a(x_in), .c(w_use), .p(prods));
        end
    endgenerate

    assign mac = x_valid_in;

    integer l;
    always @(posedge clk) begin
        x_valid_out <= rst ? 1'b0 : x_valid_in;
        x_out       <= x_in;
        x_bank_out  <= x_bank_in;
        if (x_valid_in)
            for (l = 0; l < NP; l = l + 1)
                psum_out[l*ACC_W +: ACC_W] <= psum_in[l*ACC_W +: ACC_W]
                    + {{(ACC_W - 2*DATA_W){prods[l*2*DATA_W + 2*DATA_W - 1]}}, prods[l*2*DATA_W +: 2*DATA_W]};
        if (w_shift) w_chain <= w_in;
        if (w_latch) begin
            if (w_bank) bank1 <= w_in;
            else        bank0 <= w_in;
        end
    end
endmodule
