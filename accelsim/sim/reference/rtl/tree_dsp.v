// One DSP slice of the adder-tree engine: the activation a times PN weights that share it, in one
// multiply, registered (the multiplier stage of the engine's pipeline, the DSP's M register).
//
// PN = 1: a * w0. PN = 2: two INT8 products in one DSP48E2 multiply (Xilinx WP486): the weights
// are packed as w1 * 2^18 + w0 into the 27-bit port, so the 45-bit product holds a * w0 in its
// low 18 bits and a * w1 above, less the borrow of a negative low field, which the split after
// the register adds back (LUTs between the DSP and the tree). |a * w0| < 2^17 for 8-bit
// operands, so the low field never overflows into the high one. These are the products an
// ``array.kind: adder_tree`` engine with packing ``n: 2`` computes per slice
// (accelsim.sim.engines.systolic.adder_tree_busy_cycles, ``pn``).
module tree_dsp #(
    parameter PN     = 1,
    parameter DATA_W = 8,
    parameter ACC_W  = 32
) (
    input  wire                   clk,
    input  wire [DATA_W-1:0]      a,
    input  wire [PN*DATA_W-1:0]   w,
    output wire [PN*ACC_W-1:0]    p
);
    generate
        if (PN == 1) begin : g_one
            reg signed [2*DATA_W-1:0] m;
            always @(posedge clk) m <= $signed(a) * $signed(w);
            assign p = {{(ACC_W - 2*DATA_W){m[2*DATA_W-1]}}, m};
        end else begin : g_wp486
            localparam SHIFT = 18;
            wire [DATA_W-1:0] w0 = w[0 +: DATA_W], w1 = w[DATA_W +: DATA_W];
            // the DSP48E2's ports: 27 bits (pre-adder, packed weights) times 18 bits (activation)
            wire signed [26:0] packed_w = $signed({{(27 - SHIFT - DATA_W){w1[DATA_W-1]}}, w1, {SHIFT{1'b0}}})
                                        + $signed({{(27 - DATA_W){w0[DATA_W-1]}}, w0});
            wire signed [17:0] a18 = $signed({{(18 - DATA_W){a[DATA_W-1]}}, a});
            reg  signed [44:0] m;
            always @(posedge clk) m <= packed_w * a18;
            wire signed [SHIFT-1:0] lo = m[SHIFT-1:0];
            // |a * w1| < 2^15: above its 2 DATA_W bits the high field is its sign
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [44-SHIFT:0] hi = m[44:SHIFT] + {{(44 - SHIFT){1'b0}}, m[SHIFT-1]};
            /* verilator lint_on UNUSEDSIGNAL */
            assign p[0 +: ACC_W]     = {{(ACC_W - SHIFT){lo[SHIFT-1]}}, lo};
            assign p[ACC_W +: ACC_W] = {{(ACC_W - 2*DATA_W){hi[2*DATA_W-1]}}, hi[2*DATA_W-1:0]};
        end
    endgenerate
endmodule
