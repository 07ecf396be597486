// The multiplier + adder-tree GEMM engine (``array.kind: adder_tree``: Trio-ViT's and
// EfficientViT-FPGA's MAT) with its controller and operand memories, register for register the
// machine of accelsim.sim.engines.systolic.adder_tree_busy_cycles:
//
//   LANES lanes, one token each; per lane COLS physical columns of TREE DSP slices, each slice
//   computing PN products that share its activation (PN = 2: two INT8 products per DSP48E2,
//   tree_dsp), so COLS_L = COLS * PN output channels per step and TREE inputs of the reduction;
//   per lane and output channel a pipelined adder tree over the TREE products (tree_adder) and
//   an accumulator over the K folds.
//
// Pipeline of a step (tree_ctrl issues one per cycle, from cycle 0):
//   cycle s            operands read from the memories, multiplied; products registered
//   cycles s+1..s+LV   the tree's LV = ceil(log2 TREE) levels of adders, one register each
//   cycle s+LV+1       accumulate: acc = (first K fold ? 0 : acc) + tree sum, registered; on the
//                      block's last K fold the sum is also the output, written to omem
// so a GEMM of S steps does its last accumulation in cycle S - 1 + LV + 1, exposed as
// last_out_cycle (the index convention of GemmTiming.compute_cycles: cycle 0 is the first cycle
// after start).
//
// Use: preload the memories from hex files with one load pulse ($readmemh of A_FILE, B_FILE,
// paths relative to the simulator's working directory), set m_len/k_len/n_len/b_len, pulse start,
// wait for done, then a dump pulse writes omem words 0..dump_last to O_FILE ($writememh).
// Layouts (a word holds TREE operands, operand t in bits [t*DATA_W +: DATA_W], two's complement):
//   amem[{row, kf}] = A[row, kf*TREE + t]            row = b*M + m  (batch member b)
//   bmem[{col, kf}] = B_b[kf*TREE + t, n]            col = b*N + n
//   omem[{row, n}]  = C[row, n]                      ACC_W bits
// The index fields are $clog2(MAX_ROWS), $clog2(MAX_KF), $clog2(MAX_COLS), $clog2(MAX_N) bits
// wide. Operands outside the GEMM (tokens beyond M, channels beyond N, inputs beyond K) read as
// zeros; their steps are taken all the same (the schedule is fixed), their outputs not written.
module tree_gemm #(
    parameter LANES    = 4,
    parameter COLS     = 4,
    parameter PN       = 1,
    parameter TREE     = 8,
    parameter DATA_W   = 8,
    parameter ACC_W    = 32,
    parameter MAX_ROWS = 256,   // batch * M
    parameter MAX_KF   = 128,   // ceil(K / TREE)
    parameter MAX_COLS = 1024,  // batch * N
    parameter MAX_N    = 1024,
    parameter IDX_W    = 16,
    parameter CYC_W    = 32,
    parameter A_FILE   = "tree_a.hex",
    parameter B_FILE   = "tree_b.hex",
    parameter O_FILE   = "tree_o.hex"
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [IDX_W-1:0] m_len,
    input  wire [IDX_W-1:0] k_len,
    input  wire [IDX_W-1:0] n_len,
    input  wire [IDX_W-1:0] b_len,
    input  wire             load,
    input  wire             start,
    input  wire             dump,
    input  wire [31:0]      dump_last,
    output wire             busy,
    output reg              done,
    output reg  [CYC_W-1:0] last_out_cycle
);
    localparam COLS_L = COLS * PN;
    localparam LV     = $clog2(TREE);
    localparam RA_W   = $clog2(MAX_ROWS);
    localparam KA_W   = $clog2(MAX_KF);
    localparam CA_W   = $clog2(MAX_COLS);
    localparam NA_W   = $clog2(MAX_N);
    localparam WORD   = TREE * DATA_W;
    localparam EXT    = IDX_W + 1;
    localparam TOK_W  = 4 + 3*IDX_W;  // {o_row, n0, m0, last, last_k, first, valid}

    reg [WORD-1:0]  amem [0:(1 << (RA_W + KA_W)) - 1];
    reg [WORD-1:0]  bmem [0:(1 << (CA_W + KA_W)) - 1];
    reg [ACC_W-1:0] omem [0:(1 << (RA_W + NA_W)) - 1];

    always @(posedge clk) begin
        if (load) begin
            $readmemh(A_FILE, amem);
            $readmemh(B_FILE, bmem);
        end
        if (dump) $writememh(O_FILE, omem, 0, dump_last);
    end

    // ---- controller and the step token's way to the accumulators. Memories take the low bits
    // of the indices, and the accumulators read only the token's last tap: the rest is expected.
    /* verilator lint_off UNUSEDSIGNAL */
    wire             running, first, last_k, last;
    wire [IDX_W-1:0] m0, n0, k0, kf, a_row, b_col;
    tree_ctrl #(.LANES(LANES), .COLS_L(COLS_L), .W(TREE), .IDX_W(IDX_W)) u_ctrl (
        .clk(clk), .rst(rst), .m_len(m_len), .k_len(k_len), .n_len(n_len), .b_len(b_len),
        .start(start), .running(running), .m0(m0), .n0(n0), .k0(k0), .kf(kf),
        .a_row(a_row), .b_col(b_col), .first(first), .last_k(last_k), .last(last)
    );
    wire [(LV+2)*TOK_W-1:0] tok_line;
    /* verilator lint_on UNUSEDSIGNAL */
    delay_taps #(.WIDTH(TOK_W), .DEPTH(LV + 2)) u_tok (
        .clk(clk), .rst(rst), .d({a_row, n0, m0, last, last_k, first, running}), .taps(tok_line)
    );
    wire [TOK_W-1:0] acc_tok    = tok_line[(LV+1)*TOK_W +: TOK_W];
    wire             acc_valid  = acc_tok[0];
    wire             acc_first  = acc_tok[1];
    wire             acc_last_k = acc_tok[2];
    wire             acc_last   = acc_tok[3];
    wire [IDX_W-1:0] acc_m0     = acc_tok[4 +: IDX_W];
    wire [IDX_W-1:0] acc_n0     = acc_tok[4 + IDX_W +: IDX_W];
    wire [IDX_W-1:0] acc_row    = acc_tok[4 + 2*IDX_W +: IDX_W];

    // ---- operand reads of the issue cycle (indices use the low bits of IDX_W-wide sums)
    /* verilator lint_off UNUSEDSIGNAL */
    genvar l, c, j, t, q;
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_a
            localparam [IDX_W-1:0] L_IDX = l;
            wire [IDX_W-1:0] m   = m0 + L_IDX;
            wire [IDX_W-1:0] row = a_row + L_IDX;
            wire [WORD-1:0]  word = (running && m < m_len) ? amem[{row[RA_W-1:0], kf[KA_W-1:0]}] : {WORD{1'b0}};
            wire [WORD-1:0]  x;  // inputs beyond K read as zeros
            for (t = 0; t < TREE; t = t + 1) begin : g_k
                localparam [EXT-1:0] T_IDX = t;
                assign x[t*DATA_W +: DATA_W] = ({1'b0, k0} + T_IDX < {1'b0, k_len}) ? word[t*DATA_W +: DATA_W] : {DATA_W{1'b0}};
            end
        end
        for (c = 0; c < COLS_L; c = c + 1) begin : g_b
            localparam [IDX_W-1:0] C_IDX = c;
            wire [IDX_W-1:0] n   = n0 + C_IDX;
            wire [IDX_W-1:0] col = b_col + C_IDX;
            wire [WORD-1:0]  w = (running && n < n_len) ? bmem[{col[CA_W-1:0], kf[KA_W-1:0]}] : {WORD{1'b0}};
        end
    endgenerate
    /* verilator lint_on UNUSEDSIGNAL */

    // ---- lanes x columns: TREE DSPs (PN products each), PN trees, PN accumulators
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_lane
            localparam [IDX_W-1:0] L_IDX = l;
            for (j = 0; j < COLS; j = j + 1) begin : g_col
                wire [TREE*PN*ACC_W-1:0] prods;  // input t's PN products at [(t*PN + q)*ACC_W]
                for (t = 0; t < TREE; t = t + 1) begin : g_dsp
                    wire [PN*DATA_W-1:0] ws;
                    for (q = 0; q < PN; q = q + 1) begin : g_w
                        assign ws[q*DATA_W +: DATA_W] = g_b[j*PN + q].w[t*DATA_W +: DATA_W];
                    end
                    tree_dsp #(.PN(PN), .DATA_W(DATA_W), .ACC_W(ACC_W)) u_dsp (
                        .clk(clk), .a(g_a[l].x[t*DATA_W +: DATA_W]), .w(ws),
                        .p(prods[t*PN*ACC_W +: PN*ACC_W])
                    );
                end
                for (q = 0; q < PN; q = q + 1) begin : g_out
                    localparam integer     CI    = j*PN + q;
                    localparam [IDX_W-1:0] C_IDX = CI[IDX_W-1:0];
                    wire [TREE*ACC_W-1:0] leaves;
                    for (t = 0; t < TREE; t = t + 1) begin : g_leaf
                        assign leaves[t*ACC_W +: ACC_W] = prods[(t*PN + q)*ACC_W +: ACC_W];
                    end
                    wire signed [ACC_W-1:0] sum;
                    tree_adder #(.W(TREE), .ACC_W(ACC_W)) u_tree (.clk(clk), .d(leaves), .sum(sum));
                    reg  signed [ACC_W-1:0] acc;
                    wire signed [ACC_W-1:0] total = (acc_first ? {ACC_W{1'b0}} : acc) + sum;
                    wire [IDX_W-1:0] m = acc_m0 + L_IDX;
                    wire [IDX_W-1:0] n = acc_n0 + C_IDX;
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [IDX_W-1:0] row = acc_row + L_IDX;
                    /* verilator lint_on UNUSEDSIGNAL */
                    always @(posedge clk) begin
                        if (acc_valid) acc <= total;
                        if (acc_valid && acc_last_k && m < m_len && n < n_len)
                            omem[{row[RA_W-1:0], n[NA_W-1:0]}] <= total;
                    end
                end
            end
        end
    endgenerate

    // ---- the engine's own cycle count
    reg             busy_r;
    reg [CYC_W-1:0] cyc;
    assign busy = busy_r;
    always @(posedge clk) begin
        if (rst) begin
            busy_r <= 1'b0;
            done   <= 1'b0;
        end else if (start) begin
            busy_r         <= 1'b1;
            done           <= 1'b0;
            cyc            <= {CYC_W{1'b0}};
            last_out_cycle <= {CYC_W{1'b0}};
        end else if (busy_r) begin
            cyc <= cyc + 1'b1;
            if (acc_valid) last_out_cycle <= cyc;
            if (acc_valid && acc_last) begin
                busy_r <= 1'b0;
                done   <= 1'b1;  // every output is in omem from this cycle
            end
        end
    end
endmodule
