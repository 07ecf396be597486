// ROWS x COLS grid of ws_pe: the pipelined weight-stationary array without its controller
// (accelsim.sim.engines.systolic, module docstring; pe.py _ws_pipelined).
//
// Edges (flattened, lane i at [i*W +: W]):
//   left   x_edge*    row i's PS activations, already skewed: row i runs i cycles behind row 0
//   top    w_top      column j's next PC weights for its load chain, deepest row first
//          w_shift/w_latch/w_bank/w_len  column j's chain controls, column j j cycles behind
//                     column 0; on w_latch only the w_len rows that hold data latch
//   bottom psum_bottom column j's PC*PS finished dot products (the PE (ROWS-1, j) registers)
// Partial sums enter the top row as zero. mac_any: some PE does a MAC in this cycle.
module ws_array #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter IDX_W  = 16,
    parameter PC     = 1,   // packing: stationary columns per PE (ws_pe)
    parameter PS     = 1    // packing: streamed vectors per PE
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire [ROWS*PS*DATA_W-1:0] x_edge,
    input  wire [ROWS-1:0]        x_edge_valid,
    input  wire [ROWS-1:0]        x_edge_bank,
    input  wire [COLS*PC*DATA_W-1:0] w_top,
    input  wire [COLS-1:0]        w_shift,
    input  wire [COLS-1:0]        w_latch,
    input  wire [COLS-1:0]        w_bank,
    input  wire [COLS*IDX_W-1:0]  w_len,
    output wire [COLS*PC*PS*ACC_W-1:0] psum_bottom,
    output wire                   mac_any
);
    // x_*[i][j]: into PE (i, j) from the left; [i][COLS] leaves the right edge unused
    localparam XW = PS * DATA_W, WW = PC * DATA_W, PW = PC * PS * ACC_W;
    wire [XW-1:0]            x_d [0:ROWS-1][0:COLS];
    wire                     x_v [0:ROWS-1][0:COLS];
    wire                     x_b [0:ROWS-1][0:COLS];
    // p_d[i][j]: partial sum into PE (i, j) from above; w_c[i][j]: chain stage above PE (i, j)
    wire [PW-1:0]            p_d [0:ROWS][0:COLS-1];
    wire [WW-1:0]            w_c [0:ROWS][0:COLS-1];
    wire [ROWS*COLS-1:0]     macs;

    genvar i, j;
    generate
        for (i = 0; i < ROWS; i = i + 1) begin : g_left
            assign x_d[i][0] = x_edge[i*XW +: XW];
            assign x_v[i][0] = x_edge_valid[i];
            assign x_b[i][0] = x_edge_bank[i];
        end
        for (j = 0; j < COLS; j = j + 1) begin : g_top
            assign p_d[0][j] = {PW{1'b0}};
            assign w_c[0][j] = w_top[j*WW +: WW];
            assign psum_bottom[j*PW +: PW] = p_d[ROWS][j];
        end
        for (i = 0; i < ROWS; i = i + 1) begin : g_row
            for (j = 0; j < COLS; j = j + 1) begin : g_col
                localparam [IDX_W-1:0] ROW = i;
                wire latch = w_latch[j] && (ROW < w_len[j*IDX_W +: IDX_W]);
                ws_pe #(.DATA_W(DATA_W), .ACC_W(ACC_W), .PC(PC), .PS(PS)) u_pe (
                    .clk(clk), .rst(rst),
                    .x_in(x_d[i][j]), .x_valid_in(x_v[i][j]), .x_bank_in(x_b[i][j]),
                    .x_out(x_d[i][j+1]), .x_valid_out(x_v[i][j+1]), .x_bank_out(x_b[i][j+1]),
                    .psum_in(p_d[i][j]), .psum_out(p_d[i+1][j]),
                    .w_in(w_c[i][j]), .w_shift(w_shift[j]), .w_latch(latch), .w_bank(w_bank[j]),
                    .w_chain(w_c[i+1][j]),
                    .mac(macs[i*COLS + j])
                );
            end
        end
    endgenerate

    assign mac_any = |macs;
endmodule
