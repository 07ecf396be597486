// One PE of the pipelined output-stationary array (accelsim.sim.engines.systolic, module
// docstring, "pipelined" timing, os; register-level Python model: _os_pipelined in
// accelsim/sim/reference/pe.py).
//
// The PE owns one output of the fold and holds two accumulator banks: fold n accumulates in bank
// n mod 2 while the other bank drains fold n-1's results down the column. A's element moves one
// PE right and B's one PE down per cycle; the bank, the "first term" flag and the valid bit
// travel with A, so the switch from one fold to the next moves through the array with the data.
//
// Draining: in a drain step the column's bank dr_bank shifts down by one row (dr_shift, set for
// the rows below the step's boundary); the bottom PE's bank leaves through the column's output
// port (acc_out, the selected bank). A row above the boundary keeps its value, so the next fold
// of that bank can already accumulate there: the controller guarantees that a MAC and a drain
// shift never write the same register in the same cycle.
//
// Packing (PN = 2: two INT8 products per DSP48E2, WP486, packed_mul2): the PE owns PN outputs of
// one row, C[m, n..n+PN-1]; B brings PN elements down, A's one element is the shared operand, and
// each bank holds PN accumulators (lane b at [b*ACC_W +: ACC_W]) that drain together.
module os_pe #(
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter PN     = 1
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire signed [DATA_W-1:0] a_in,
    input  wire                     a_valid_in,
    input  wire                     a_bank_in,
    input  wire                     a_first_in,   // the fold's first term: start from zero
    output reg  signed [DATA_W-1:0] a_out,
    output reg                      a_valid_out,
    output reg                      a_bank_out,
    output reg                      a_first_out,
    input  wire [PN*DATA_W-1:0]     b_in,
    output reg  [PN*DATA_W-1:0]     b_out,
    // drain: bank dr_bank of the PE above (acc_in) moves into this PE's bank dr_bank
    input  wire                     dr_shift,
    input  wire                     dr_bank,
    input  wire [PN*ACC_W-1:0]      acc_in,
    output wire [PN*ACC_W-1:0]      acc_out,
    output wire                     mac
);
    reg  [PN*ACC_W-1:0]    acc0, acc1;
    wire [PN*2*DATA_W-1:0] prods;   // the exact products, lane b
    generate
        if (PN == 1) begin : g_one
            assign prods = a_in * $signed(b_in);
        end else begin : g_two
            packed_mul2 #(.DATA_W(DATA_W)) u_dsp (.a(b_in), .c(a_in), .p(prods));
        end
    endgenerate
    wire [PN*ACC_W-1:0] base = a_first_in ? {(PN*ACC_W){1'b0}} : (a_bank_in ? acc1 : acc0);
    reg  [PN*ACC_W-1:0] sum;
    integer l;
    always @(*) begin
        for (l = 0; l < PN; l = l + 1)
            sum[l*ACC_W +: ACC_W] = base[l*ACC_W +: ACC_W]
                + {{(ACC_W - 2*DATA_W){prods[l*2*DATA_W + 2*DATA_W - 1]}}, prods[l*2*DATA_W +: 2*DATA_W]};
    end

    assign acc_out = dr_bank ? acc1 : acc0;
    assign mac = a_valid_in;

    always @(posedge clk) begin
        a_valid_out <= rst ? 1'b0 : a_valid_in;
        a_out       <= a_in;
        a_bank_out  <= a_bank_in;
        a_first_out <= a_first_in;
        b_out       <= b_in;
        if (a_valid_in && !a_bank_in)   acc0 <= sum;
        else if (dr_shift && !dr_bank)  acc0 <= acc_in;
        if (a_valid_in && a_bank_in)    acc1 <= sum;
        else if (dr_shift && dr_bank)   acc1 <= acc_in;
    end
endmodule
