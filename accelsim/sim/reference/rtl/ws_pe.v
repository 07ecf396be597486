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
module ws_pe #(
    parameter DATA_W = 8,
    parameter ACC_W  = 32
) (
    input  wire                     clk,
    input  wire                     rst,
    // activation from the left neighbour (or the row's edge), with its valid bit and fold's bank
    input  wire signed [DATA_W-1:0] x_in,
    input  wire                     x_valid_in,
    input  wire                     x_bank_in,
    output reg  signed [DATA_W-1:0] x_out,
    output reg                      x_valid_out,
    output reg                      x_bank_out,
    // partial sum from the PE above (zero at the top row), to the PE below
    input  wire signed [ACC_W-1:0]  psum_in,
    output reg  signed [ACC_W-1:0]  psum_out,
    // weight load chain: data from the stage above, column-wide shift / latch / bank select
    input  wire signed [DATA_W-1:0] w_in,
    input  wire                     w_shift,
    input  wire                     w_latch,
    input  wire                     w_bank,
    output reg  signed [DATA_W-1:0] w_chain,
    // this PE does a MAC in this cycle (for the array's last-MAC cycle counter)
    output wire                     mac
);
    reg signed [DATA_W-1:0] bank0, bank1;
    wire signed [DATA_W-1:0] w_use = x_bank_in ? bank1 : bank0;
    // the exact product (2*DATA_W bits), sign-extended into the accumulator width
    wire signed [2*DATA_W-1:0] prod = x_in * w_use;
    wire signed [ACC_W-1:0] prod_ext = {{(ACC_W - 2*DATA_W){prod[2*DATA_W-1]}}, prod};

    assign mac = x_valid_in;

    always @(posedge clk) begin
        x_valid_out <= rst ? 1'b0 : x_valid_in;
        x_out       <= x_in;
        x_bank_out  <= x_bank_in;
        if (x_valid_in) psum_out <= psum_in + prod_ext;
        if (w_shift) w_chain <= w_in;
        if (w_latch) begin
            if (w_bank) bank1 <= w_in;
            else        bank0 <= w_in;
        end
    end
endmodule
