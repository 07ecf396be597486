// A pipelined adder tree: W inputs summed over ceil(log2 W) levels of registers, each level
// adding pairs of the level before (an odd last node passes through its register, so every
// path has the same depth). One sum leaves every cycle, LEVELS cycles after its inputs.
// W = 1 has no level: the sum is the input.
module tree_adder #(
    parameter W     = 8,
    parameter ACC_W = 32
) (
    /* verilator lint_off UNUSEDSIGNAL */  // a one-input tree has no register
    input  wire               clk,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [W*ACC_W-1:0] d,
    output wire [ACC_W-1:0]   sum
);
    localparam LEVELS = $clog2(W);
    genvar j, i;
    generate
        for (j = 0; j <= LEVELS; j = j + 1) begin : g_lvl
            localparam NJ = (W + (1 << j) - 1) >> j;  // nodes of level j
            wire [NJ*ACC_W-1:0] q;
            if (j == 0) begin : g_in
                assign q = d;
            end else begin : g_add
                localparam NP = (W + (1 << (j - 1)) - 1) >> (j - 1);  // nodes of level j - 1
                for (i = 0; i < NJ; i = i + 1) begin : g_node
                    reg signed [ACC_W-1:0] r;
                    if (2*i + 1 < NP) begin : g_pair
                        always @(posedge clk)
                            r <= $signed(g_lvl[j-1].q[2*i*ACC_W +: ACC_W]) + $signed(g_lvl[j-1].q[(2*i+1)*ACC_W +: ACC_W]);
                    end else begin : g_pass
                        always @(posedge clk) r <= g_lvl[j-1].q[2*i*ACC_W +: ACC_W];
                    end
                    assign q[i*ACC_W +: ACC_W] = r;
                end
            end
        end
    endgenerate
    assign sum = g_lvl[LEVELS].q;
endmodule
