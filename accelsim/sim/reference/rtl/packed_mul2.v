// Two products that share an operand, out of one multiplier: the INT8 packing of a DSP48E2
// (Xilinx WP486, "Deep Learning with INT8 Optimization on Xilinx Devices"), which is what
// accelsim.sim.engines.systolic means by two products per DSP (Packing n = 2 on ws/os, the
// streamed pair of an is fold).
//
// The pre-adder forms (a1 << SHIFT) + a0 in the DSP's 27-bit A/D path, the multiplier takes it
// times c on the 18-bit B port, and P = a1*c * 2^SHIFT + a0*c. The low SHIFT bits of P are a0*c
// (it fits in SHIFT bits, two's complement); the bits above are a1*c minus one when a0*c is
// negative (the borrow), so adding P's bit SHIFT-1 back gives a1*c: WP486's sign correction.
// SHIFT = 2*DATA_W + 2 is WP486's 18 for 8-bit operands; wider operands keep the arithmetic but
// no longer fit a DSP48E2's ports (27 x 18).
module packed_mul2 #(
    parameter DATA_W = 8
) (
    input  wire [2*DATA_W-1:0] a,    // a0 at [0 +: DATA_W], a1 at [DATA_W +: DATA_W]
    input  wire [DATA_W-1:0]   c,    // the shared operand
    output wire [4*DATA_W-1:0] p     // a0*c at [0 +: 2*DATA_W], a1*c at [2*DATA_W +: 2*DATA_W]
);
    localparam SHIFT = 2*DATA_W + 2;
    localparam PW    = SHIFT + DATA_W + 1;   // pre-adder output: 27 bits for 8-bit operands
    localparam MW    = PW + DATA_W;          // product: 35 of the DSP's 45 bits

    wire signed [DATA_W-1:0] a0 = a[0 +: DATA_W];
    wire signed [DATA_W-1:0] a1 = a[DATA_W +: DATA_W];
    wire signed [PW-1:0] hi_part = {a1[DATA_W-1], a1, {SHIFT{1'b0}}};
    wire signed [PW-1:0] lo_part = {{(PW-DATA_W){a0[DATA_W-1]}}, a0};
    wire signed [PW-1:0] packed_a = hi_part + lo_part;
    wire signed [MW-1:0] prod = packed_a * $signed(c);

    // both products fit 2*DATA_W bits; the guard bits above them are sign copies
    /* verilator lint_off UNUSEDSIGNAL */
    wire [SHIFT-1:0]   lo = prod[SHIFT-1:0];
    wire [MW-SHIFT-1:0] hi = prod[MW-1:SHIFT] + {{(MW-SHIFT-1){1'b0}}, prod[SHIFT-1]};
    /* verilator lint_on UNUSEDSIGNAL */
    assign p = {hi[2*DATA_W-1:0], lo[2*DATA_W-1:0]};
endmodule
