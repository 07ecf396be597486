// The pipelined weight-stationary array with its controller and operand memories: computes
// O[T, Sc] = X[T, Sr] @ S[Sr, Sc] with S stationary in the PEs (accelsim.sim.engines.systolic,
// module docstring, "pipelined" timing; cycle for cycle the same machine as _ws_pipelined in
// accelsim/sim/reference/pe.py, with its packing: PC columns of S per PE, PS vectors of X per cycle,
// two products per DSP at most, see ws_array and packed_mul2).
//
//   PC = 2: ws with two INT8 weights per DSP48E2 (Packing n = 2, WP486): a fold covers COLS*PC
//           columns of S, PE column j holds S columns c0 + j*PC + a
//   PS = 2: is with two activations per DSP (Packing n = 2 under is, the stream packed): a fold
//           streams ceil(T / PS) packed vectors, vector tau being X rows tau*PS + u
//
//   ws: X = A (M x K), S = B (K x N), O = A @ B
//   is: X = B^T (N x K), S = A^T (K x M), O = (A @ B)^T   (input-stationary is this array run
//       on the transposed problem, as in pe.py)
//
// Use: write X row by row (x_we, x_waddr = t, x_wdata = X[t, 0..MAX_SR-1]) and S row by row
// (s_we, s_waddr = k, s_wdata = S[k, 0..MAX_SC-1]), set t_len/sr_len/sc_len, pulse start for one
// cycle, wait for done, read O row by row (o_raddr = t, o_rdata = O[t, 0..MAX_SC-1], combinational).
// Lane i of a row bus is [i*W +: W], two's complement.
//
// The array counts its own cycles: cycle 0 is the first cycle after start (the first load
// cycle), and last_mac_cycle is the index of the last cycle in which any PE did a MAC, the
// convention of pe.py and of GemmTiming.compute_cycles (SCALE-Sim's "compute cycles").
//
// Operand memories are register files with one read port per array row / column, which is what
// the edge needs per cycle (a real design banks X by k mod ROWS and S by n mod COLS). Unused rows
// and columns of a partial fold at the GEMM's edge read zeros and still take part in the schedule.
module ws_gemm #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter MAX_T  = 32,
    parameter MAX_SR = 32,
    parameter MAX_SC = 32,
    parameter IDX_W  = 16,
    parameter CYC_W  = 32,
    parameter PC     = 1,
    parameter PS     = 1
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire [IDX_W-1:0]         t_len,
    input  wire [IDX_W-1:0]         sr_len,
    input  wire [IDX_W-1:0]         sc_len,
    input  wire                     x_we,
    input  wire [$clog2(MAX_T)-1:0] x_waddr,
    input  wire [MAX_SR*DATA_W-1:0] x_wdata,
    input  wire                     s_we,
    input  wire [$clog2(MAX_SR)-1:0] s_waddr,
    input  wire [MAX_SC*DATA_W-1:0] s_wdata,
    input  wire                     start,
    output wire                     busy,
    output reg                      done,
    output reg  [CYC_W-1:0]         last_mac_cycle,
    input  wire [$clog2(MAX_T)-1:0] o_raddr,
    output reg  [MAX_SC*ACC_W-1:0]  o_rdata
);
    localparam TA_W = $clog2(MAX_T);
    localparam KA_W = $clog2(MAX_SR);
    localparam NA_W = $clog2(MAX_SC);
    // token layouts (valid bit first, see delay_taps)
    localparam ROW_W = 4 + 3*IDX_W;   // {c0, r0, tau, last, first, bank, valid}
    localparam COL_W = 3 + 3*IDX_W;   // {len, c0, k, latch, bank, valid}
    localparam NP    = PC * PS;       // partial sums per PE, lane a*PS + u
    localparam [IDX_W-1:0] PC_IDX = PC[IDX_W-1:0];
    localparam [IDX_W-1:0] PS_IDX = PS[IDX_W-1:0];
    // packed vectors per fold: the controller counts these
    wire [IDX_W-1:0] tp_len = (PS == 1) ? t_len : (t_len + PS_IDX - 1) / PS_IDX;

    // The operand memories take a whole row per write; the array's edges read single elements.
    // Rows are written and read out by loops (of blocking writes: a memory is written only while
    // the array is idle), which the simulator keeps rolled where one block per lane would be code
    // per lane, and a row-wide word would be copied whole for every element read.
    reg signed [DATA_W-1:0] xmem [0:MAX_T-1][0:MAX_SR-1];
    reg signed [DATA_W-1:0] smem [0:MAX_SR-1][0:MAX_SC-1];
    reg signed [ACC_W-1:0]  omem [0:MAX_T-1][0:MAX_SC-1];

    integer w;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        if (x_we) begin
            w = 0;
            while (w < MAX_SR) begin
                xmem[x_waddr][w] = x_wdata[w*DATA_W +: DATA_W];
                w = w + 1;
            end
        end
        if (s_we) begin
            w = 0;
            while (w < MAX_SC) begin
                smem[s_waddr][w] = s_wdata[w*DATA_W +: DATA_W];
                w = w + 1;
            end
        end
    end
    /* verilator lint_on BLKSEQ */
    integer r;
    always @(*) begin
        o_rdata = '0;
        r = 0;
        while (r < MAX_SC) begin
            o_rdata[r*ACC_W +: ACC_W] = omem[o_raddr][r];
            r = r + 1;
        end
    end

    genvar g, a, u;

    // ---- controller
    wire             finish;
    wire [CYC_W-1:0] cyc;
    wire             ld_valid, ld_bank, ld_latch;
    wire [IDX_W-1:0] ld_k, ld_c0, ld_len;
    wire             st_valid, st_bank, st_first, st_last;
    wire [IDX_W-1:0] st_tau, st_r0, st_c0;

    // a fold covers COLS*PC columns of S: the controller sees the logical array
    ws_ctrl #(.ROWS(ROWS), .COLS(COLS*PC), .IDX_W(IDX_W), .CYC_W(CYC_W)) u_ctrl (
        .clk(clk), .rst(rst), .t_len(tp_len), .sr_len(sr_len), .sc_len(sc_len),
        .start(start), .finish(finish), .running(busy), .cyc(cyc),
        .ld_valid(ld_valid), .ld_bank(ld_bank), .ld_latch(ld_latch),
        .ld_k(ld_k), .ld_c0(ld_c0), .ld_len(ld_len),
        .st_valid(st_valid), .st_bank(st_bank), .st_tau(st_tau), .st_r0(st_r0), .st_c0(st_c0),
        .st_first(st_first), .st_last(st_last)
    );

    // ---- skew: row i sees the stream token i cycles late, column j the load token j cycles late
    wire [ROWS*ROW_W-1:0] row_tok;
    wire [COLS*COL_W-1:0] col_tok;
    delay_taps #(.WIDTH(ROW_W), .DEPTH(ROWS)) u_row_skew (
        .clk(clk), .rst(rst),
        .d({st_c0, st_r0, st_tau, st_last, st_first, st_bank, st_valid}), .taps(row_tok)
    );
    delay_taps #(.WIDTH(COL_W), .DEPTH(COLS)) u_col_skew (
        .clk(clk), .rst(rst), .d({ld_len, ld_c0, ld_k, ld_latch, ld_bank, ld_valid}), .taps(col_tok)
    );

    // ---- array edges
    wire [ROWS*PS*DATA_W-1:0] x_edge;
    wire [ROWS-1:0]        x_edge_valid, x_edge_bank;
    wire [COLS*PC*DATA_W-1:0] w_top;
    wire [COLS-1:0]        w_shift, w_latch, w_bank;
    wire [COLS*IDX_W-1:0]  w_len;
    wire [COLS*NP*ACC_W-1:0] psum_bottom;
    wire                   mac_any;

    // Every edge unpacks only the token fields it needs, and indexes memories by the low bits
    // of IDX_W-wide indices: the unused bits are expected.
    /* verilator lint_off UNUSEDSIGNAL */
    generate
        for (g = 0; g < ROWS; g = g + 1) begin : g_row_edge
            wire [ROW_W-1:0] tok = row_tok[g*ROW_W +: ROW_W];
            wire [IDX_W-1:0] tau = tok[4 +: IDX_W];
            wire [IDX_W-1:0] k   = tok[4 + IDX_W +: IDX_W] + g;   // r0 + i
            assign x_edge_valid[g] = tok[0];
            assign x_edge_bank[g]  = tok[1];
            for (u = 0; u < PS; u = u + 1) begin : g_lane
                wire [IDX_W-1:0] t = tau * PS_IDX + u;
                assign x_edge[(g*PS + u)*DATA_W +: DATA_W] =
                    (tok[0] && k < sr_len && t < t_len) ? xmem[t[TA_W-1:0]][k[KA_W-1:0]] : {DATA_W{1'b0}};
            end
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_col_edge
            wire [COL_W-1:0] tok = col_tok[g*COL_W +: COL_W];
            wire [IDX_W-1:0] k   = tok[3 +: IDX_W];
            wire [IDX_W-1:0] n0  = tok[3 + IDX_W +: IDX_W] + g * PC_IDX;   // c0 + j*PC
            assign w_shift[g] = tok[0];
            assign w_bank[g]  = tok[1];
            assign w_latch[g] = tok[0] && tok[2];
            assign w_len[g*IDX_W +: IDX_W] = tok[3 + 2*IDX_W +: IDX_W];
            for (a = 0; a < PC; a = a + 1) begin : g_lane
                wire [IDX_W-1:0] n = n0 + a;
                assign w_top[(g*PC + a)*DATA_W +: DATA_W] =
                    (tok[0] && k < sr_len && n < sc_len) ? smem[k[KA_W-1:0]][n[NA_W-1:0]] : {DATA_W{1'b0}};
            end
        end
    endgenerate

    ws_array #(.ROWS(ROWS), .COLS(COLS), .DATA_W(DATA_W), .ACC_W(ACC_W), .IDX_W(IDX_W), .PC(PC), .PS(PS)) u_array (
        .clk(clk), .rst(rst),
        .x_edge(x_edge), .x_edge_valid(x_edge_valid), .x_edge_bank(x_edge_bank),
        .w_top(w_top), .w_shift(w_shift), .w_latch(w_latch), .w_bank(w_bank),
        .w_len(w_len),
        .psum_bottom(psum_bottom), .mac_any(mac_any)
    );

    // ---- write-back: column j's sum leaves PE (ROWS-1, j) one cycle after its MAC, which is
    // j cycles after the token entered row ROWS-1, so the bottom tag line is that token delayed
    // by j+1 (tap j+1). The K folds of an output add up in omem; the first one overwrites.
    wire [(COLS+1)*ROW_W-1:0] out_tok;
    delay_taps #(.WIDTH(ROW_W), .DEPTH(COLS + 1)) u_out_skew (
        .clk(clk), .rst(rst), .d(row_tok[(ROWS-1)*ROW_W +: ROW_W]), .taps(out_tok)
    );
    generate
        for (g = 0; g < COLS; g = g + 1) begin : g_writeback
            wire [ROW_W-1:0] tok = out_tok[(g+1)*ROW_W +: ROW_W];
            wire [IDX_W-1:0] tau = tok[4 +: IDX_W];
            for (a = 0; a < PC; a = a + 1) begin : g_col_lane
                for (u = 0; u < PS; u = u + 1) begin : g_vec_lane
                    wire [IDX_W-1:0] n = tok[4 + 2*IDX_W +: IDX_W] + g * PC_IDX + a;
                    wire [IDX_W-1:0] t = tau * PS_IDX + u;
                    wire signed [ACC_W-1:0] psum = psum_bottom[(g*NP + a*PS + u)*ACC_W +: ACC_W];
                    always @(posedge clk) begin
                        if (tok[0] && n < sc_len && t < t_len) begin
                            if (tok[2]) omem[t[TA_W-1:0]][n[NA_W-1:0]] <= psum;
                            else        omem[t[TA_W-1:0]][n[NA_W-1:0]] <= omem[t[TA_W-1:0]][n[NA_W-1:0]] + psum;
                        end
                    end
                end
            end
        end
    endgenerate
    // the GEMM's last vector leaves the last column: every result is in omem from the next cycle
    wire [ROW_W-1:0] last_tok = out_tok[COLS*ROW_W +: ROW_W];
    assign finish = busy && last_tok[0] && last_tok[3];
    /* verilator lint_on UNUSEDSIGNAL */

    always @(posedge clk) begin
        if (rst) begin
            done <= 1'b0;
        end else if (start) begin
            done <= 1'b0;
            last_mac_cycle <= {CYC_W{1'b0}};
        end else begin
            if (finish) done <= 1'b1;
            if (busy && mac_any) last_mac_cycle <= cyc;
        end
    end
endmodule
